package main

import "testing"

func TestCountStale(t *testing.T) {
	tests := []struct {
		name          string
		before, after string
		want          staleCount
	}{
		{
			name:   "flushed at once",
			before: "7\r\n8\r\n9\r\n",
			after:  "^C\r\nbench$ ",
			want:   staleCount{other: 11},
		},
		{
			name:   "a line under way is finished, then two more, then the echo",
			before: "98\r\n99\r\n10",
			after:  "0\r\n101\r\n102\r\n^C\r\n\x1b[?2004hbench$ ",
			want:   staleCount{flood: 3 + 5 + 5, inOrder: 13, other: 11 + 8, first: 100, last: 102},
		},
		{
			name:   "the flush cuts a line",
			before: "98\r\n99\r\n",
			after:  "100\r\n10^C\r\nbench$ ",
			want:   staleCount{flood: 5 + 2, inOrder: 7, other: 11, first: 100, last: 101},
		},
		{
			name:   "lines the flush dropped, a flood line after the echo",
			before: "5\r\n6\r\n",
			after:  "7\r\n^C9\r\n\r\nbench$ ",
			want:   staleCount{flood: 3 + 3, inOrder: 3, other: 2 + 2 + 7, first: 7, last: 9, gaps: 1},
		},
		{
			name:   "the end of a line whose start was dropped, then later lines",
			before: "98\r\n99\r\n",
			after:  "100\r\n9\r\n2000\r\n2001\r\n^C\r\nbench$ ",
			want:   staleCount{flood: 5 + 3 + 6 + 6, inOrder: 5, other: 11, first: 100, last: 2001, gaps: 1},
		},
		{
			name:   "a line end split by the keystroke",
			before: "98\r\n99\r",
			after:  "\n100\r\n^C\r\nbench$ ",
			want:   staleCount{flood: 1 + 5, inOrder: 6, other: 11, first: 100, last: 100},
		},
		{
			name:   "a line split by the keystroke",
			before: "98\r\n99",
			after:  "\r\n100\r\n^C\r\nbench$ ",
			want:   staleCount{flood: 2 + 5, inOrder: 7, other: 11, first: 99, last: 100},
		},
		{
			name:   "the start of a cut line joined to the end of a later one",
			before: "265964\r\n",
			after:  "265965\r\n265438\r\n305439\r\n^C\r\nbench$ ",
			want:   staleCount{flood: 24, inOrder: 8, other: 11, first: 265965, last: 305439, gaps: 1},
		},
		{
			name:   "nothing known before",
			before: "",
			after:  "41\r\n42\r\n^C\r\nbench$ ",
			want:   staleCount{flood: 8, inOrder: 8, other: 11, first: 41, last: 42},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := countStale([]byte(tt.before), []byte(tt.after))
			if got != tt.want {
				t.Errorf("countStale(%q, %q) = %+v, want %+v", tt.before, tt.after, got, tt.want)
			}
		})
	}
}
