package bench

import (
	"context"
	"crypto/rand"
	"strings"
	"testing"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/crypto"
)

// The no-sign row still leaks (the curious subscriber gets every block) and
// delivers everything, through the application-level signature check.
func TestGossipSubNoSignDeliversAndLeaks(t *testing.T) {
	r := runTiny(t, SystemGossipSubNoSign)
	if r.CovFinal != 1 {
		t.Errorf("cov_final = %v, want 1", r.CovFinal)
	}
	if r.Leaks == 0 {
		t.Error("leaks = 0: the curious subscribers received nothing, so the leak probe is blind")
	}
	if !strings.Contains(r.Config, "StrictNoSign") {
		t.Errorf("config %q does not say StrictNoSign", r.Config)
	}
}

func TestBlockValidatorRejectsForgeries(t *testing.T) {
	key, pub, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	other, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 1024)
	putHeader(data, 1, 7)
	signed, err := signBlock(key, data)
	if err != nil {
		t.Fatal(err)
	}
	byOther, err := signBlock(other, data)
	if err != nil {
		t.Fatal(err)
	}
	tampered := append([]byte(nil), signed...)
	tampered[100] ^= 1
	renumbered := append([]byte(nil), signed...)
	putHeader(renumbered, 1, 8)

	val := blockValidator(pub, 1)
	for _, c := range []struct {
		name string
		data []byte
		want pubsub.ValidationResult
	}{
		{"signed by the publisher", signed, pubsub.ValidationAccept},
		{"signed by another key", byOther, pubsub.ValidationReject},
		{"data changed", tampered, pubsub.ValidationReject},
		{"header changed", renumbered, pubsub.ValidationReject},
		{"unsigned", data, pubsub.ValidationReject},
		{"signature only", signed[len(data):], pubsub.ValidationReject},
		{"empty", nil, pubsub.ValidationReject},
	} {
		m := &pubsub.Message{Message: &pb.Message{Data: c.data}}
		if got := val(context.Background(), "", m); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
	// Channel 0's validator refuses channel 1's block, even well signed.
	if got := blockValidator(pub, 0)(context.Background(), "", &pubsub.Message{Message: &pb.Message{Data: signed}}); got != pubsub.ValidationReject {
		t.Errorf("another channel's block: %v, want reject", got)
	}
	// A forgery gets an ID of its own, so it cannot shadow the block.
	if dataMsgID(&pb.Message{Data: signed}) == dataMsgID(&pb.Message{Data: tampered}) {
		t.Error("a tampered block has the block's message ID")
	}
}
