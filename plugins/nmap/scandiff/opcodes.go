package scandiff

// opcode is one stretch of difflib's SequenceMatcher.get_opcodes: a[i1:i2]
// becomes b[j1:j2].
type opcode struct {
	tag            string // equal, replace, delete, insert
	i1, i2, j1, j2 int
}

// opcodes compares two short lists (OS matches, script output lines) as
// Python's difflib does without junk heuristics: the longest common run,
// earliest in a, then earliest in b, and the same on either side of it.
// ndiff counts the stretches that are not "equal" as its cost, so the
// split must be difflib's.
func opcodes(a, b []string) []opcode {
	type block struct{ i, j, n int }
	var blocks []block
	var find func(alo, ahi, blo, bhi int)
	find = func(alo, ahi, blo, bhi int) {
		bi, bj, bn := alo, blo, 0
		// Longest common run in a[alo:ahi], b[blo:bhi], by dynamic
		// programming; lists here are short.
		prev := make([]int, bhi-blo+1)
		cur := make([]int, bhi-blo+1)
		for i := alo; i < ahi; i++ {
			for j := blo; j < bhi; j++ {
				if a[i] == b[j] {
					cur[j-blo+1] = prev[j-blo] + 1
					if k := cur[j-blo+1]; k > bn {
						bi, bj, bn = i-k+1, j-k+1, k
					}
				} else {
					cur[j-blo+1] = 0
				}
			}
			prev, cur = cur, prev
		}
		if bn == 0 {
			return
		}
		find(alo, bi, blo, bj)
		blocks = append(blocks, block{bi, bj, bn})
		find(bi+bn, ahi, bj+bn, bhi)
	}
	find(0, len(a), 0, len(b))
	blocks = append(blocks, block{len(a), len(b), 0})
	var ops []opcode
	i, j := 0, 0
	for _, bl := range blocks {
		tag := ""
		switch {
		case i < bl.i && j < bl.j:
			tag = "replace"
		case i < bl.i:
			tag = "delete"
		case j < bl.j:
			tag = "insert"
		}
		if tag != "" {
			ops = append(ops, opcode{tag, i, bl.i, j, bl.j})
		}
		i, j = bl.i+bl.n, bl.j+bl.n
		if bl.n > 0 {
			ops = append(ops, opcode{"equal", bl.i, i, bl.j, j})
		}
	}
	return ops
}

func countChanges(ops []opcode) int {
	n := 0
	for _, op := range ops {
		if op.tag != "equal" {
			n++
		}
	}
	return n
}
