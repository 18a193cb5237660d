package state

import (
	"strings"
	"testing"
)

func TestValidateID(t *testing.T) {
	for _, ok := range []string{"a", "c1", "my_ctr-1.2+x", strings.Repeat("a", MaxIDLength)} {
		if err := ValidateID(ok); err != nil {
			t.Errorf("ValidateID(%q) = %v, want nil", ok, err)
		}
	}
	for bad, mention := range map[string]string{
		"":                                 "empty",
		".":                                "path element",
		"..":                               "path element",
		"a/b":                              "'/'",
		"../x":                             "'/'",
		"/abs":                             "'/'",
		"a\x00b":                           "not allowed",
		"a b":                              "not allowed",
		strings.Repeat("a", MaxIDLength+1): "longer",
	} {
		err := ValidateID(bad)
		if err == nil || !strings.Contains(err.Error(), mention) {
			t.Errorf("ValidateID(%q) = %v, want an error mentioning %q", bad, err, mention)
		}
	}
}
