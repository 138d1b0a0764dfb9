package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
)

// bbolt trusts its own pages: one flipped overflow count in the free-list
// page makes Tx.Commit free billions of pages (gigabytes of memory, a
// commit that never returns), a child page id past the end of the file
// faults on the map, a branch that points at itself recurses without end.
// So before bbolt sees a file, checkPages reads its pages with plain reads
// and bounds every number against the file: the meta pages, the free list
// and every page reachable from the root bucket. The same walker, lenient,
// salvages what a damaged file still holds without bbolt.
//
// The layout is bbolt's (go.etcd.io/bbolt/internal/common, format version
// 2), in the machine's byte order; linnet's targets are little-endian.
//
//	page header  16 bytes: id uint64, flags uint16, count uint16, overflow uint32
//	meta         after the header: magic uint32, version uint32, page size
//	             uint32, flags uint32, root bucket (root pgid, sequence
//	             uint64), free list pgid, high-water pgid, txid, checksum
//	             (FNV-64a of the 56 bytes before it)
//	branch elem  16 bytes: pos uint32, ksize uint32, child pgid uint64
//	leaf elem    16 bytes: flags uint32, pos uint32, ksize uint32, vsize uint32
//	             (pos counts from the element itself; bit 0 of flags marks
//	             a bucket, whose value is root pgid, sequence and, when the
//	             root is 0, an inline leaf page)
//	free list    count uint16 of pgids after the header; 0xFFFF means the
//	             first uint64 holds the count
const (
	pageHeader   = 16
	elemSize     = 16
	bucketHeader = 16

	flagBranch   = 0x01
	flagLeaf     = 0x02
	flagMeta     = 0x04
	flagFreelist = 0x10
	flagBucket   = 0x01

	boltMagic   = 0xED0CDAED
	boltVersion = 2
	noFreelist  = ^uint64(0)

	// maxDepth bounds the tree walk: bbolt's trees of a small store are a
	// few levels deep, a cycle is not.
	maxDepth = 64
)

var le = binary.LittleEndian

// boltMeta is one decoded meta page.
type boltMeta struct {
	page     int  // 0 or 1
	summed   bool // magic, version and checksum are right: bbolt would use it
	pageSize int
	root     uint64
	freelist uint64
	pgid     uint64 // high-water mark: pages [0, pgid) are in use or free
	txid     uint64
}

// pageFile reads pages of a bbolt file with bounds checks.
type pageFile struct {
	f    io.ReaderAt
	size int64
	ps   int
	hwm  uint64 // the meta's pgid
}

// readMeta decodes the meta page at off, checking magic, version and
// checksum as bbolt does, then the numbers bbolt does not check.
func readMeta(f io.ReaderAt, size, off int64, salvage bool) (boltMeta, error) {
	var b [pageHeader + 64]byte
	if off+int64(len(b)) > size {
		return boltMeta{}, fmt.Errorf("meta page at %d: past the end of the file (%d bytes)", off, size)
	}
	if _, err := f.ReadAt(b[:], off); err != nil {
		return boltMeta{}, fmt.Errorf("meta page at %d: %w", off, err)
	}
	m := b[pageHeader:]
	if le.Uint32(m) != boltMagic || le.Uint32(m[4:]) != boltVersion {
		return boltMeta{}, fmt.Errorf("meta page at %d: not a bbolt version 2 meta page", off)
	}
	h := fnv.New64a()
	h.Write(m[:56])
	if h.Sum64() != le.Uint64(m[56:]) {
		return boltMeta{}, fmt.Errorf("meta page at %d: checksum mismatch", off)
	}
	md := boltMeta{summed: true, pageSize: int(le.Uint32(m[8:])), root: le.Uint64(m[16:]),
		freelist: le.Uint64(m[32:]), pgid: le.Uint64(m[40:]), txid: le.Uint64(m[48:])}
	ps := md.pageSize
	switch {
	case le.Uint16(b[8:]) != flagMeta:
		return md, fmt.Errorf("meta page at %d: flags %#x", off, le.Uint16(b[8:]))
	case ps < 512 || ps > 1<<16 || ps&(ps-1) != 0:
		return md, fmt.Errorf("meta page at %d: page size %d", off, ps)
	case md.pgid < 3 || !salvage && md.pgid > uint64(size)/uint64(ps) || md.pgid > 1<<40:
		return md, fmt.Errorf("meta page at %d: %d pages in use, the file holds %d", off, md.pgid, size/int64(ps))
	case md.root < 2 || md.root >= md.pgid:
		return md, fmt.Errorf("meta page at %d: root page %d outside [2, %d)", off, md.root, md.pgid)
	case md.freelist != noFreelist && (md.freelist < 2 || md.freelist >= md.pgid):
		return md, fmt.Errorf("meta page at %d: free-list page %d outside [2, %d)", off, md.freelist, md.pgid)
	}
	return md, nil
}

// readMetas returns the file's valid meta pages, newest (highest txid)
// first, and why the others are not valid. When the meta page bbolt would
// use (the newest whose checksum is right) is not valid, its problem comes
// first in the errors and stale is set: the valid one left is not the one
// bbolt would read.
func readMetas(f io.ReaderAt, size int64, salvage bool) (metas []boltMeta, errs []error, stale bool) {
	var summed []boltMeta
	add := func(m boltMeta, err error) {
		if m.summed {
			summed = append(summed, m)
		}
		if err == nil {
			metas = append(metas, m)
		} else {
			errs = append(errs, err)
		}
	}
	m0, err0 := readMeta(f, size, 0, salvage)
	add(m0, err0)
	// The second meta page sits one page in; without the first one's page
	// size, try each size bbolt could have used.
	sizes := []int{m0.pageSize}
	if !m0.summed {
		sizes = []int{512, 1 << 10, 2 << 10, 4 << 10, 8 << 10, 16 << 10, 32 << 10, 64 << 10}
	}
	var m1 boltMeta
	var err1 error
	for _, ps := range sizes {
		if m1, err1 = readMeta(f, size, int64(ps), salvage); m1.summed && m1.pageSize != ps {
			m1, err1 = boltMeta{}, fmt.Errorf("meta page at %d: page size %d", ps, m1.pageSize)
		}
		if m1.summed {
			break
		}
	}
	m1.page = 1
	add(m1, err1)
	if len(metas) == 2 && metas[1].txid > metas[0].txid {
		metas[0], metas[1] = metas[1], metas[0]
	}
	if len(summed) == 2 && summed[1].txid > summed[0].txid {
		summed[0], summed[1] = summed[1], summed[0]
	}
	if len(summed) > 0 && (len(metas) == 0 || metas[0].page != summed[0].page) {
		stale = true
		_, err := readMeta(f, size, [2]int64{0, int64(summed[0].pageSize)}[summed[0].page], salvage)
		errs = append([]error{err}, errs...)
	}
	return metas, errs, stale
}

// page reads page id and its overflow pages, checking the header.
func (p *pageFile) page(id uint64, want ...uint16) ([]byte, error) {
	if id < 2 || id >= p.hwm {
		return nil, fmt.Errorf("page %d outside [2, %d)", id, p.hwm)
	}
	var h [pageHeader]byte
	if _, err := p.f.ReadAt(h[:], int64(id)*int64(p.ps)); err != nil {
		return nil, fmt.Errorf("page %d: %w", id, err)
	}
	if got := le.Uint64(h[:]); got != id {
		return nil, fmt.Errorf("page %d says it is page %d", id, got)
	}
	flags, over := le.Uint16(h[8:]), uint64(le.Uint32(h[12:]))
	ok := false
	for _, w := range want {
		ok = ok || flags == w
	}
	if !ok {
		return nil, fmt.Errorf("page %d: flags %#x", id, flags)
	}
	if id+over >= p.hwm {
		return nil, fmt.Errorf("page %d: %d overflow pages run past page %d", id, over, p.hwm)
	}
	b := make([]byte, (over+1)*uint64(p.ps))
	if _, err := p.f.ReadAt(b, int64(id)*int64(p.ps)); err != nil {
		return nil, fmt.Errorf("page %d: %w", id, err)
	}
	return b, nil
}

// span is the page range [id, id+overflow] a page occupies.
func span(b []byte, ps int) (uint64, uint64) {
	return le.Uint64(b), le.Uint64(b) + uint64(len(b)/ps) - 1
}

// freelist reads the free-list page: the free page ids, checked against
// the high-water mark, and the page's own span.
func (p *pageFile) freelist(id uint64) ([]uint64, error) {
	b, err := p.page(id, flagFreelist)
	if err != nil {
		return nil, fmt.Errorf("free list: %w", err)
	}
	n, at := uint64(le.Uint16(b[10:])), pageHeader
	if n == 0xFFFF {
		n, at = le.Uint64(b[pageHeader:]), pageHeader+8
	}
	if n > uint64(len(b)-at)/8 {
		return nil, fmt.Errorf("free list: %d ids do not fit its %d bytes", n, len(b))
	}
	ids := make([]uint64, n)
	for i := range ids {
		ids[i] = le.Uint64(b[at+8*i:])
		if ids[i] < 2 || ids[i] >= p.hwm {
			return nil, fmt.Errorf("free list: page %d outside [2, %d)", ids[i], p.hwm)
		}
	}
	return ids, nil
}

// entry is one key/value of a top-level bucket.
type entry struct {
	bucket, key, value []byte
}

// walker walks the tree of buckets from a meta page's root. strict stops
// at the first problem; otherwise bad pages are skipped, their problems
// counted, and the rest collected (salvage).
type walker struct {
	p      *pageFile
	strict bool
	used   []bool // pages claimed by the tree or the free list
	errs   []error
	visit  func(e entry)
}

func (w *walker) fail(err error) bool {
	w.errs = append(w.errs, err)
	return w.strict
}

// claim marks a page span as used, refusing one claimed twice (a cycle,
// or a page both free and in use).
func (w *walker) claim(from, to uint64) error {
	for id := from; id <= to; id++ {
		if w.used[id] {
			return fmt.Errorf("page %d is used twice", id)
		}
		w.used[id] = true
	}
	return nil
}

// bucket walks the tree rooted at page root (or the inline page in
// inline) whose values belong to bucket name (nil for the root bucket,
// whose values are the top-level buckets).
func (w *walker) bucket(name []byte, root uint64, inline []byte, depth int) (stop bool) {
	if depth > maxDepth {
		return w.fail(fmt.Errorf("bucket %q: deeper than %d levels", name, maxDepth))
	}
	if root == 0 {
		return w.leaf(name, inline, depth)
	}
	b, err := w.p.page(root, flagBranch, flagLeaf)
	if err == nil {
		err = w.claim(span(b, w.p.ps))
	}
	if err != nil {
		return w.fail(fmt.Errorf("bucket %q: %w", name, err))
	}
	if le.Uint16(b[8:]) == flagLeaf {
		return w.leaf(name, b, depth)
	}
	n := int(le.Uint16(b[10:]))
	if pageHeader+n*elemSize > len(b) {
		return w.fail(fmt.Errorf("bucket %q: branch page %d: %d elements do not fit", name, root, n))
	}
	for i := range n {
		child := le.Uint64(b[pageHeader+i*elemSize+8:])
		if w.bucket(name, child, nil, depth+1) {
			return true
		}
	}
	return false
}

// leaf walks one leaf page b (a page read from the file, or an inline
// bucket's page).
func (w *walker) leaf(name, b []byte, depth int) (stop bool) {
	if len(b) < pageHeader || le.Uint16(b[8:]) != flagLeaf {
		return w.fail(fmt.Errorf("bucket %q: not a leaf page", name))
	}
	n := int(le.Uint16(b[10:]))
	if pageHeader+n*elemSize > len(b) {
		return w.fail(fmt.Errorf("bucket %q: leaf: %d elements do not fit %d bytes", name, n, len(b)))
	}
	for i := range n {
		at := pageHeader + i*elemSize
		e := b[at:]
		flags, pos := le.Uint32(e), uint64(le.Uint32(e[4:]))
		ks, vs := uint64(le.Uint32(e[8:])), uint64(le.Uint32(e[12:]))
		start := uint64(at) + pos
		if start+ks+vs > uint64(len(b)) {
			if w.fail(fmt.Errorf("bucket %q: leaf element %d runs past its page", name, i)) {
				return true
			}
			continue
		}
		k, v := b[start:start+ks], b[start+ks:start+ks+vs]
		if flags&flagBucket == 0 {
			if name == nil {
				if w.fail(fmt.Errorf("value %q outside any bucket", k)) {
					return true
				}
				continue
			}
			if w.visit != nil {
				w.visit(entry{bucket: name, key: k, value: v})
			}
			continue
		}
		if len(v) < bucketHeader {
			if w.fail(fmt.Errorf("bucket %q: sub-bucket %q of %d bytes", name, k, len(v))) {
				return true
			}
			continue
		}
		sub := k
		if name != nil { // linnet keeps no nested buckets; walk them by their top name
			sub = name
		}
		if w.bucket(sub, le.Uint64(v), v[bucketHeader:], depth+1) {
			return true
		}
	}
	return false
}

// checkPages checks the bbolt file f of size bytes before bbolt opens it:
// the meta page bbolt will use, its free list and its tree. It returns nil
// for a file bbolt can be trusted with, or why not.
func checkPages(f io.ReaderAt, size int64) error {
	metas, errs, stale := readMetas(f, size, false)
	if stale {
		return fmt.Errorf("the meta page bbolt would use is not valid: %w", errs[0])
	}
	if len(metas) == 0 {
		return fmt.Errorf("no valid meta page: %w", errors.Join(errs...))
	}
	return checkTree(f, size, metas[0])
}

// checkTree checks the free list and the tree of meta m strictly.
func checkTree(f io.ReaderAt, size int64, m boltMeta) error {
	p := &pageFile{f: f, size: size, ps: m.pageSize, hwm: m.pgid}
	w := &walker{p: p, strict: true, used: make([]bool, m.pgid)}
	w.used[0], w.used[1] = true, true
	if m.freelist != noFreelist {
		ids, err := p.freelist(m.freelist)
		if err != nil {
			return err
		}
		b, _ := p.page(m.freelist, flagFreelist)
		if err := w.claim(span(b, p.ps)); err != nil {
			return fmt.Errorf("free list: %w", err)
		}
		for _, id := range ids {
			if err := w.claim(id, id); err != nil {
				return fmt.Errorf("free list: %w", err)
			}
		}
	}
	w.bucket(nil, m.root, nil, 0)
	if len(w.errs) > 0 {
		return w.errs[0]
	}
	return nil
}

// salvageFile reads every value of every top-level bucket it can reach
// from either meta page, the newest meta's value winning where both reach
// a key; a bad page costs what is below it, not the rest. It never uses
// bbolt, so no page can make it panic, loop or allocate past the file's
// size.
func salvageFile(path string) (entries []entry, problems []error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, []error{err}
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, []error{err}
	}
	metas, errs, _ := readMetas(f, fi.Size(), true)
	if len(metas) == 0 {
		return nil, append(errs, errors.New("no valid meta page: nothing to salvage"))
	}
	seen := map[string]bool{}
	for _, m := range metas {
		// A truncated file keeps its meta pages' high-water mark: pages
		// past the end fail to read and are skipped.
		hwm := min(m.pgid, uint64(fi.Size())/uint64(m.pageSize)+1)
		if hwm < 3 {
			problems = append(problems, fmt.Errorf("meta page %d: the file ends before its tree", m.page))
			continue
		}
		p := &pageFile{f: f, size: fi.Size(), ps: m.pageSize, hwm: hwm}
		w := &walker{p: p, used: make([]bool, hwm), visit: func(e entry) {
			id := string(e.bucket) + "\x00" + string(e.key)
			if !seen[id] {
				seen[id] = true
				entries = append(entries, entry{bucket: clone(e.bucket), key: clone(e.key), value: clone(e.value)})
			}
		}}
		w.used[0], w.used[1] = true, true
		w.bucket(nil, m.root, nil, 0)
		problems = append(problems, w.errs...)
	}
	return entries, problems
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }
