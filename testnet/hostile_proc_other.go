//go:build !linux

package testnet

import (
	"errors"
	"time"
)

var errNoProc = errors.New("testnet: the hostile suite reads the target's memory and CPU from /proc, which only Linux has")

func procSupported() error               { return errNoProc }
func procRSS(int) (int64, error)         { return 0, errNoProc }
func procCPU(int) (time.Duration, error) { return 0, errNoProc }
