package testenv

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestMissing runs TestMissingHelper in a child process, with and without
// CI=true: a skip outside CI, a failure naming what is missing under it.
func TestMissing(t *testing.T) {
	for _, tc := range []struct {
		ci       string
		wantFail bool
		want     string
	}{
		{"", false, "--- SKIP: TestMissingHelper"},
		{"false", false, "--- SKIP: TestMissingHelper"},
		{"true", true, "--- FAIL: TestMissingHelper"},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestMissingHelper$", "-test.v")
		cmd.Env = append(os.Environ(), "BERTH_TESTENV_HELPER=1", "CI="+tc.ci)
		out, err := cmd.CombinedOutput()
		if failed := err != nil; failed != tc.wantFail || !strings.Contains(string(out), tc.want) || !strings.Contains(string(out), "frobnicate is not installed") {
			t.Errorf("CI=%q: expected failed=%v and %q with the reason, got err %v:\n%s", tc.ci, tc.wantFail, tc.want, err, out)
		}
	}
}

func TestMissingHelper(t *testing.T) {
	if os.Getenv("BERTH_TESTENV_HELPER") != "1" {
		t.Skip("helper process for TestMissing")
	}
	Missing(t, "frobnicate is not installed")
	t.Error("Missing returned")
}
