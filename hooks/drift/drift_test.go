package drift

import (
	"errors"
	"reflect"
	"testing"
)

func TestSettle(t *testing.T) {
	var restored []string
	fail := errors.New("refused")
	steps := []Step{
		{Missing: nil, Restore: func() error { restored = append(restored, "nothing"); return nil }},
		{Missing: []string{"a1", "a2"}, Restore: func() error { restored = append(restored, "a"); return nil }},
		{Missing: []string{"b"}, Restore: func() error { restored = append(restored, "b"); return fail }},
		{Missing: []string{"c"}, Restore: func() error { restored = append(restored, "c"); return nil }},
	}
	want := []Drift{{"a1", nil}, {"a2", nil}, {"b", nil}, {"c", nil}}
	if got := Settle(steps, false, "test.point"); !reflect.DeepEqual(got, want) || restored != nil {
		t.Errorf("check: Settle = %v (restored %v), want %v and nothing restored", got, restored, want)
	}
	want[2].Err = fail
	if got := Settle(steps, true, "test.point"); !reflect.DeepEqual(got, want) || !reflect.DeepEqual(restored, []string{"a", "b", "c"}) {
		t.Errorf("repair: Settle = %v (restored %v), want %v, a b c restored in order, on past b's failure", got, restored, want)
	}
}
