package node

import (
	"math"
	"reflect"
	"testing"

	"github.com/fabgossip/fabgossip/transport/wire"
)

func TestToRanges(t *testing.T) {
	tests := []struct {
		name string
		nums []uint64
		want [][2]uint64
	}{
		{"empty", nil, nil},
		{"single", []uint64{7}, [][2]uint64{{7, 7}}},
		{"run", []uint64{1, 2, 3}, [][2]uint64{{1, 3}}},
		{"gaps", []uint64{0, 1, 3, 5, 6}, [][2]uint64{{0, 1}, {3, 3}, {5, 6}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got [][2]uint64
			for _, r := range toRanges(tt.nums) {
				got = append(got, [2]uint64{r.First, r.Last})
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("toRanges(%v) = %v, want %v", tt.nums, got, tt.want)
			}
		})
	}
}

func TestValidRanges(t *testing.T) {
	if !validRanges([]*wire.Range{{First: 1, Last: 1}, {First: 3, Last: 9}}) {
		t.Error("ordered ranges rejected")
	}
	if validRanges([]*wire.Range{{First: 2, Last: 1}}) {
		t.Error("inverted range accepted")
	}
	if validRanges([]*wire.Range{nil}) {
		t.Error("nil range accepted")
	}
	if validRanges(make([]*wire.Range, maxRanges+1)) {
		t.Error("too many ranges accepted")
	}
}

func TestEachNumberIsBounded(t *testing.T) {
	var got []uint64
	eachNumber([]*wire.Range{{First: 0, Last: math.MaxUint64}}, 3, func(n uint64) bool {
		got = append(got, n)
		return true
	})
	if !reflect.DeepEqual(got, []uint64{0, 1, 2}) {
		t.Fatalf("got %v, want [0 1 2]", got)
	}
	got = nil
	eachNumber([]*wire.Range{{First: math.MaxUint64 - 1, Last: math.MaxUint64}, {First: 5, Last: 5}}, 10, func(n uint64) bool {
		got = append(got, n)
		return true
	})
	if !reflect.DeepEqual(got, []uint64{math.MaxUint64 - 1, math.MaxUint64, 5}) {
		t.Fatalf("got %v: the range ending at MaxUint64 must not wrap", got)
	}
}
