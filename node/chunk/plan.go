package chunk

import "sort"

// Source is a peer that can serve chunks of a block.
type Source struct {
	// Have lists the chunks the peer holds (CheckRanges-valid); nil means
	// every chunk: it holds the block whole.
	Have []Range
}

// has reports whether s holds chunk i.
func (s Source) has(i int) bool { return s.Have == nil || Contains(s.Have, i) }

// next returns the smallest chunk >= i that s holds, if any.
func (s Source) next(i int) (int, bool) {
	if s.Have == nil {
		return i, true
	}
	return nextIn(s.Have, i)
}

// Assignment asks sources[Source] for the chunks in Ranges.
type Assignment struct {
	Source int
	Ranges []Range
}

// Chunks returns the number of chunks asked for.
func (a Assignment) Chunks() int {
	n := 0
	for _, r := range a.Ranges {
		n += r.Len()
	}
	return n
}

// Assign spreads the wanted chunks (ascending ranges, typically Missing
// less the chunks requested already, see Subtract) over the sources that
// hold them, for a resumable pull from several peers at once. Each wanted
// chunk goes to at most one source, and each source gets at most perSource
// chunks (the caller's in-flight budget per peer, e.g. its fetch bytes
// divided by the chunk size). A source keeps taking consecutive chunks
// while it holds them and has budget, so each request is a few long ranges;
// then the next source in order takes over. The caller orders sources by
// preference (shuffled with its RNG, or fastest first). A chunk that no
// source with budget holds is left out, for a later round.
//
// The result lists the sources that got chunks, in source order. It costs
// O(len(sources)) per run of chunks with one source, times a binary search
// of that source's Have, and never walks a chunk no source can serve.
func Assign(want []Range, sources []Source, perSource int) []Assignment {
	if perSource < 1 || len(sources) == 0 {
		return nil
	}
	perSource = min(perSource, ceilingChunks) // no block has more
	budget := make([]int, len(sources))
	for s := range budget {
		budget[s] = perSource
	}
	left := perSource * len(sources)
	got := make([][]Range, len(sources))
	cur := -1 // the source taking the current run
	for _, w := range want {
		for i := w.First; i <= w.Last && left > 0; {
			if cur < 0 || budget[cur] == 0 || !sources[cur].has(i) {
				cur = pick(sources, budget, cur, i)
			}
			if cur < 0 {
				// Nobody with budget holds i: skip to the next chunk
				// someone holds.
				j, ok := nextHeld(sources, budget, i+1)
				if !ok {
					break
				}
				i = j
				continue
			}
			// The run: as far as cur holds, has budget and w goes.
			end := w.Last
			if h := sources[cur].Have; h != nil {
				k := rangeOf(h, i)
				end = min(end, h[k].Last)
			}
			end = min(end, i+budget[cur]-1)
			got[cur] = append(got[cur], Range{i, end})
			budget[cur] -= end - i + 1
			left -= end - i + 1
			i = end + 1
		}
	}
	var out []Assignment
	for s, rs := range got {
		if len(rs) > 0 {
			out = append(out, Assignment{Source: s, Ranges: merge(rs)})
		}
	}
	return out
}

// pick returns the first source after after (cyclically) with budget that
// holds chunk i, or -1.
func pick(sources []Source, budget []int, after, i int) int {
	for k := 1; k <= len(sources); k++ {
		s := (after + k) % len(sources) // after >= -1
		if budget[s] > 0 && sources[s].has(i) {
			return s
		}
	}
	return -1
}

// nextHeld returns the smallest chunk >= i held by a source with budget.
func nextHeld(sources []Source, budget []int, i int) (int, bool) {
	best, found := 0, false
	for s, src := range sources {
		if budget[s] == 0 {
			continue
		}
		if j, ok := src.next(i); ok && (!found || j < best) {
			best, found = j, true
		}
	}
	return best, found
}

// rangeOf returns the index of the range of rs that contains i, which
// Contains(rs, i) guarantees.
func rangeOf(rs []Range, i int) int {
	return sort.Search(len(rs), func(k int) bool { return rs[k].Last >= i })
}

// merge joins adjacent ranges of an ascending list in place.
func merge(rs []Range) []Range {
	out := rs[:1]
	for _, r := range rs[1:] {
		if last := &out[len(out)-1]; last.Last+1 == r.First {
			last.Last = r.Last
			continue
		}
		out = append(out, r)
	}
	return out
}
