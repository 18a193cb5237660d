package netcontract

import "testing"

func TestRoot(t *testing.T) {
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	if got := Root(getenv); got != DefaultRoot {
		t.Errorf("Root without %s = %q, want %q", RootEnv, got, DefaultRoot)
	}
	env[RootEnv] = "/tmp/x"
	if got := Root(getenv); got != "/tmp/x" {
		t.Errorf("Root with %s=/tmp/x = %q", RootEnv, got)
	}
}

func TestMessage(t *testing.T) {
	for out, want := range map[string]string{
		"berth-net: network foo: not found\n": "network foo: not found",
		"plain failure\n":                     "plain failure",
		"":                                    "",
	} {
		if got := Message([]byte(out)); got != want {
			t.Errorf("Message(%q) = %q, want %q", out, got, want)
		}
	}
}
