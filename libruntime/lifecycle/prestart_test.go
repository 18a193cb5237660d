package lifecycle

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runtime-spec/specs-go"
)

func TestWithStatusKeepsOtherFields(t *testing.T) {
	in := []byte(`{"ociVersion":"1.3.0","id":"c1","status":"creating","pid":42,"bundle":"/b","annotations":{"a":"b"},"future":[1,2]}`)
	out, err := withStatus(in, specs.StateCreated)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	if got["status"] != "created" || got["id"] != "c1" || got["pid"] != float64(42) || got["future"] == nil {
		t.Errorf("expected status created and every other field kept, got %s", out)
	}
	if _, err := withStatus([]byte("not json"), specs.StateCreated); err == nil {
		t.Error("expected an error for a state that is not JSON")
	}
}

func TestWrapPrestart(t *testing.T) {
	cfg := &configs.Config{Hooks: configs.Hooks{
		configs.Prestart: configs.HookList{
			configs.NewCommandHook(&configs.Command{Path: "/bin/hook", Args: []string{"hook", "-x"}, Env: []string{"A=b"}}),
			configs.NewCommandHook(&configs.Command{Path: "/bin/bare"}),
		},
		configs.CreateRuntime: configs.HookList{
			configs.NewCommandHook(&configs.Command{Path: "/bin/other"}),
		},
	}}
	WrapPrestart(cfg)
	want := [][]string{
		{"berth", PrestartShimArg, "/bin/hook", "hook", "-x"},
		{"berth", PrestartShimArg, "/bin/bare", "/bin/bare"},
	}
	for i, h := range cfg.Hooks[configs.Prestart] {
		c := h.(configs.CommandHook)
		if c.Path != selfExe || !slices.Equal(c.Args, want[i]) {
			t.Errorf("prestart[%d]: expected %s %q, got %s %q", i, selfExe, want[i], c.Path, c.Args)
		}
	}
	if env := cfg.Hooks[configs.Prestart][0].(configs.CommandHook).Env; !slices.Equal(env, []string{"A=b"}) {
		t.Errorf("prestart[0]: expected its env kept, got %q", env)
	}
	if p := cfg.Hooks[configs.CreateRuntime][0].(configs.CommandHook).Path; p != "/bin/other" {
		t.Errorf("createRuntime hooks must not be wrapped, got path %s", p)
	}
}
