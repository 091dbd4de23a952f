// Command pytest-chaos-hold holds memory for chaos.stress, the way a leaking app would: its
// pages are charged to its memory cgroup, but they are not in its resident set.
//
//	pytest-chaos-hold BYTES SECONDS [MARKER]
//
// It allocates BYTES in an anonymous memory file (memfd) with fallocate, never mapping it, so
// its own RSS stays at a few hundred kilobytes and the kernel's OOM killer judges the other
// processes of the cgroup by their own footprint; it does not raise its oom_score_adj either
// (stress-ng's workers do). It then holds the memory until SECONDS have passed or it gets
// SIGTERM or SIGINT. Whenever it ends, even by SIGKILL, the kernel frees the memory: nothing
// outlives the process. MARKER is ignored; it is there for pgrep -f.
//
// If the cgroup cannot give more (ENOMEM, ENOSPC) it keeps what it has and says so.
package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
	"unsafe"
)

// chunk is how much is allocated per fallocate call: small steps, so the cgroup's usage grows
// steadily and an OOM kill happens at the limit, not one big request past it.
const chunk = 4 << 20

func main() {
	if len(os.Args) < 3 {
		fail("usage: pytest-chaos-hold BYTES SECONDS [MARKER]")
	}
	size, err := strconv.ParseInt(os.Args[1], 10, 64)
	if err != nil || size <= 0 {
		fail(fmt.Sprintf("BYTES must be a positive integer, not %q", os.Args[1]))
	}
	seconds, err := strconv.ParseInt(os.Args[2], 10, 64)
	if err != nil || seconds <= 0 {
		fail(fmt.Sprintf("SECONDS must be a positive integer, not %q", os.Args[2]))
	}
	stop := make(chan os.Signal, 2)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	deadline := time.NewTimer(time.Duration(seconds) * time.Second)

	fd, err := memfd("pytest-chaos-hold")
	if err != nil {
		fail(fmt.Sprintf("memfd_create: %v", err))
	}
	held, err := grow(fd, size, stop)
	switch {
	case err == errStopped:
		fmt.Printf("pytest-chaos-hold: stopped while allocating (%d of %d bytes)\n", held, size)
		return
	case err != nil:
		fmt.Printf("pytest-chaos-hold: holding %d of %d bytes: %v\n", held, size, err)
	default:
		fmt.Printf("pytest-chaos-hold: holding %d bytes for %ds\n", held, seconds)
	}
	select {
	case <-stop:
		fmt.Println("pytest-chaos-hold: stopped, memory released")
	case <-deadline.C:
		fmt.Println("pytest-chaos-hold: time is up, memory released")
	}
}

var errStopped = errors.New("stopped")

// grow allocates size bytes of fd's file in chunks; it returns how many it holds.
func grow(fd int, size int64, stop <-chan os.Signal) (int64, error) {
	var held int64
	for held < size {
		select {
		case <-stop:
			return held, errStopped
		default:
		}
		step := min(int64(chunk), size-held)
		for {
			err := syscall.Fallocate(fd, 0, held, step)
			if err == syscall.EINTR {
				continue
			}
			if err != nil {
				return held, err
			}
			break
		}
		held += step
	}
	return held, nil
}

// memfd creates an anonymous memory file (memfd_create(2), close-on-exec).
func memfd(name string) (int, error) {
	label, err := syscall.BytePtrFromString(name)
	if err != nil {
		return -1, err
	}
	const mfdCloexec = 0x1
	fd, _, errno := syscall.Syscall(sysMemfdCreate, uintptr(unsafe.Pointer(label)), mfdCloexec, 0)
	if errno != 0 {
		return -1, errno
	}
	return int(fd), nil
}

func fail(message string) {
	fmt.Fprintln(os.Stderr, "pytest-chaos-hold: "+message)
	os.Exit(2)
}
