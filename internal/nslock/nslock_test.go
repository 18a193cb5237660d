package nslock

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

func TestAcquire(t *testing.T) {
	name := fmt.Sprintf("berth-test-%d/nslock", os.Getpid())
	unlock, err := Acquire(name, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Acquire(name, 50*time.Millisecond); err == nil || !strings.Contains(err.Error(), "still held") {
		t.Errorf("a second Acquire while held = %v, want a timeout", err)
	}
	unlock()
	again, err := Acquire(name, time.Second)
	if err != nil {
		t.Fatalf("Acquire after unlock: %v", err)
	}
	again()
}
