package main

import (
	"encoding/binary"
	"math/rand"
	"testing"
	"time"
)

// packetMessage builds an NFQNL_MSG_PACKET message as the kernel sends it: header, nfgenmsg,
// a packet header attribute (id, hw protocol, hook) and another attribute after it.
func packetMessage(id uint32) []byte {
	hdr := make([]byte, 7)
	binary.BigEndian.PutUint32(hdr[0:4], id)
	binary.BigEndian.PutUint16(hdr[4:6], 0x0800)
	hdr[6] = 3 // NF_INET_LOCAL_OUT
	mark := make([]byte, 4)
	attrs := append(attr(attrPacketHdr, hdr), attr(3, mark)...)
	message := make([]byte, 20+len(attrs))
	binary.NativeEndian.PutUint32(message[0:4], uint32(len(message)))
	binary.NativeEndian.PutUint16(message[4:6], subsysQueue<<8|msgPacket)
	copy(message[20:], attrs)
	return message
}

func TestPacketIDsReadsEveryMessageOfADatagram(t *testing.T) {
	datagram := append(packetMessage(7), packetMessage(8)...)
	ids := packetIDs(datagram)
	if len(ids) != 2 || ids[0] != 7 || ids[1] != 8 {
		t.Fatalf("ids = %v, want [7 8]", ids)
	}
	if got := packetIDs(datagram[:10]); len(got) != 0 {
		t.Fatalf("a truncated datagram gave %v", got)
	}
}

func TestReleaseTimesKeepTheDelayTheJitterBoundAndTheOrder(t *testing.T) {
	start := time.Unix(1000, 0)
	random := rand.New(rand.NewSource(1)).Int63n
	previous := time.Time{}
	delay, jitter := 300*time.Millisecond, 50*time.Millisecond
	for i := 0; i < 1000; i++ {
		now := start.Add(time.Duration(i) * 100 * time.Millisecond) // far apart: independent
		release := releaseTime(now, previous, delay, jitter, random)
		if wait := release.Sub(now); wait < delay-jitter || wait > delay+jitter {
			t.Fatalf("packet %d waits %s, outside %s +- %s", i, wait, delay, jitter)
		}
		previous = release
	}
	// Close together, a later packet never leaves before an earlier one.
	previous = time.Time{}
	for i := 0; i < 1000; i++ {
		release := releaseTime(start.Add(time.Duration(i)*time.Microsecond), previous, delay, jitter, random)
		if release.Before(previous) {
			t.Fatalf("packet %d released before its predecessor", i)
		}
		previous = release
	}
	if got := releaseTime(start, time.Time{}, time.Millisecond, time.Second, func(int64) int64 { return 0 }); got != start {
		t.Fatalf("a negative wait must be 0, got %s", got.Sub(start))
	}
}
