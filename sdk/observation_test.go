package sdk

import "testing"

func TestParsePortRanges(t *testing.T) {
	cases := []struct {
		in   []string
		want string
		err  bool
	}{
		{[]string{"22"}, "22", false},
		{[]string{"22,80", "443"}, "22,80,443", false},
		{[]string{"8000-8100", "8050-9000", "9001"}, "8000-9001", false},
		{[]string{"1-1024,8000-9000"}, "1-1024,8000-9000", false},
		{[]string{"10-5"}, "", true},
		{[]string{"0"}, "", true},
		{[]string{"65536"}, "", true},
		{[]string{"ssh"}, "", true},
		{[]string{"22,"}, "", true},
	}
	for _, c := range cases {
		got, err := ParsePortRanges(c.in...)
		if (err != nil) != c.err {
			t.Fatalf("%v: error %v", c.in, err)
		}
		if err == nil && got.String() != c.want {
			t.Fatalf("%v: got %s, want %s", c.in, got, c.want)
		}
	}
}

func TestPortRangesContains(t *testing.T) {
	r, _ := ParsePortRanges("22,80-90,443")
	for port, want := range map[uint16]bool{21: false, 22: true, 23: false, 80: true, 85: true, 90: true, 91: false, 443: true, 65535: false} {
		if r.Contains(port) != want {
			t.Errorf("Contains(%d) = %v", port, !want)
		}
	}
	if (PortRanges{}).Contains(1) {
		t.Error("empty ranges contain a port")
	}
}
