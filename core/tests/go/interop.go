// Interoperability oracle for core/tests/go_interop.rs.
//
// Reads a JSON job (from the file named by the first argument, or stdin),
// runs it through Go's reference packages golang.org/x/mod/sumdb/note and
// golang.org/x/mod/sumdb/tlog only, and prints the results as JSON on stdout.
// Each check reports Go's raw verdict (ok plus error text), so the Rust side
// can assert acceptance and rejection itself. Items that carry an expectation
// ("expect_ok", "want_text") and do not meet it are listed under "failures",
// and the program then exits 1 after printing its results; a job that cannot
// be read exits 2. Build in GOPATH mode:
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o interop interop.go
package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// tileHeight is the C2SP tlog-tiles height: 2^8 = 256 hashes per tile.
const tileHeight = 8

type Job struct {
	// note.Open of each message against the verifier keys given.
	Open []OpenJob `json:"open"`
	// note.NewVerifier of each verifier key.
	VerifierKeys []string `json:"verifier_keys"`
	// note.NewSigner(skey) then note.Sign over the text.
	Sign []SignJob `json:"sign"`
	// note.GenerateKey(name), then a signature over the text with it.
	Generate []GenerateJob `json:"generate"`

	// Leaf (record) hashes, base64. Go builds its own stored-hash tree
	// from them with tlog.StoredHashesForRecordHash.
	Leaves []string `json:"leaves"`
	// Sizes for tlog.TreeHash over Go's own tree.
	TreeSizes []int64 `json:"tree_sizes"`
	// tlog.CheckRecord of inclusion proofs (and Go's own ProveRecord).
	Inclusion []InclusionJob `json:"inclusion"`
	// tlog.CheckTree of consistency proofs (and Go's own ProveTree).
	Consistency []ConsistencyJob `json:"consistency"`
	// Height-8 tiles: tlog.HashFromTile of every hash they hold.
	Tiles []TileJob `json:"tiles"`
	// tlog.NewTiles(8, old, new) for each pair.
	NewTiles [][2]int64 `json:"new_tiles"`
	// A log published as static files: read it with only the log's key.
	Published *PublishedJob `json:"published"`
}

// PublishedJob names a C2SP tlog-tiles log (checkpoint, tile/L/N[.p/W],
// tile/entries/N[.p/W]) as a directory, or as the base URL of a server (a
// C2SP tlog-mirror's monitoring prefix), and the log's verifier key. Go
// opens the checkpoint with note, authenticates the tiles against it with
// tlog.TileHashReader, and proves each index's entry (from its bundle) with
// tlog.ProveRecord and tlog.CheckRecord. With mirror_vkey (a C2SP
// tlog-cosignature cosignature/v1 key, which x/mod's note cannot parse), the
// checkpoint must also carry a valid cosignature by that key, checked with
// the note.Verifier below.
type PublishedJob struct {
	Dir        string  `json:"dir"`
	URL        string  `json:"url"`
	Vkey       string  `json:"vkey"`
	MirrorVkey string  `json:"mirror_vkey"`
	Indexes    []int64 `json:"indexes"`
}

// read is the file at path (slash-separated, relative) of the log.
func (j *PublishedJob) read(path string) ([]byte, error) {
	if j.URL == "" {
		return os.ReadFile(filepath.Join(j.Dir, path))
	}
	url := strings.TrimRight(j.URL, "/") + "/" + path
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return io.ReadAll(resp.Body)
}

type PublishedResult struct {
	Origin  string   `json:"origin"`
	Size    int64    `json:"size"`
	Root    string   `json:"root"`
	Proved  int      `json:"proved"`
	Entries []string `json:"entries"`
	// The cosignature/v1 timestamp of the mirror's cosignature, when asked.
	MirrorTimestamp uint64 `json:"mirror_timestamp"`
}

// cosigV1 verifies C2SP tlog-cosignature cosignature/v1 signatures: an
// 8-byte big-endian timestamp, then Ed25519 over
// "cosignature/v1\ntime <timestamp>\n" and the note text.
type cosigV1 struct {
	name string
	hash uint32
	key  ed25519.PublicKey
	// The timestamp of the last signature that verified.
	timestamp uint64
}

func (c *cosigV1) Name() string    { return c.name }
func (c *cosigV1) KeyHash() uint32 { return c.hash }
func (c *cosigV1) Verify(msg, sig []byte) bool {
	if len(sig) != 8+ed25519.SignatureSize {
		return false
	}
	ts := binary.BigEndian.Uint64(sig[:8])
	signed := append([]byte(fmt.Sprintf("cosignature/v1\ntime %d\n", ts)), msg...)
	if !ed25519.Verify(c.key, signed, sig[8:]) {
		return false
	}
	c.timestamp = ts
	return true
}

// newCosigV1 parses a cosignature/v1 verifier key, name+hash+base64(0x04 ||
// key), checking its key hash: SHA-256(name || "\n" || 0x04 || key)[:4].
func newCosigV1(vkey string) (*cosigV1, error) {
	parts := strings.SplitN(vkey, "+", 3)
	if len(parts) != 3 {
		return nil, fmt.Errorf("not name+hash+key")
	}
	hash, err := strconv.ParseUint(parts[1], 16, 32)
	if err != nil || len(parts[1]) != 8 {
		return nil, fmt.Errorf("key hash %q", parts[1])
	}
	raw, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil || len(raw) != 1+ed25519.PublicKeySize || raw[0] != 0x04 {
		return nil, fmt.Errorf("not a cosignature/v1 key")
	}
	h := sha256.Sum256(append([]byte(parts[0]+"\n"), raw...))
	if binary.BigEndian.Uint32(h[:4]) != uint32(hash) {
		return nil, fmt.Errorf("key hash %s does not match the key", parts[1])
	}
	return &cosigV1{name: parts[0], hash: uint32(hash), key: ed25519.PublicKey(raw[1:])}, nil
}

type OpenJob struct {
	Label    string   `json:"label"`
	Msg      string   `json:"msg"`
	Vkeys    []string `json:"vkeys"`
	ExpectOK *bool    `json:"expect_ok"`
	WantText *string  `json:"want_text"`
}

type SignJob struct {
	Label string `json:"label"`
	Skey  string `json:"skey"`
	Text  string `json:"text"`
}

type GenerateJob struct {
	Name string `json:"name"`
	Text string `json:"text"`
}

type InclusionJob struct {
	Label    string   `json:"label"`
	Index    int64    `json:"index"`
	Size     int64    `json:"size"`
	Root     string   `json:"root"`
	Leaf     string   `json:"leaf"`
	Proof    []string `json:"proof"`
	ExpectOK *bool    `json:"expect_ok"`
}

type ConsistencyJob struct {
	Label    string   `json:"label"`
	Old      int64    `json:"old"`
	New      int64    `json:"new"`
	OldRoot  string   `json:"old_root"`
	NewRoot  string   `json:"new_root"`
	Proof    []string `json:"proof"`
	ExpectOK *bool    `json:"expect_ok"`
}

type TileJob struct {
	Level int    `json:"level"`
	Index int64  `json:"index"`
	Width int    `json:"width"`
	Data  string `json:"data"`
}

type Sig struct {
	Name string `json:"name"`
	Hash string `json:"hash"`
}

type OpenResult struct {
	Label          string `json:"label"`
	OK             bool   `json:"ok"`
	Error          string `json:"error,omitempty"`
	ErrorKind      string `json:"error_kind,omitempty"`
	Text           string `json:"text"`
	Sigs           []Sig  `json:"sigs"`
	UnverifiedSigs []Sig  `json:"unverified_sigs"`
}

type VerifierResult struct {
	Vkey  string `json:"vkey"`
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
	Name  string `json:"name"`
	Hash  string `json:"hash"`
}

type SignResult struct {
	Label string `json:"label"`
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
	Name  string `json:"name"`
	Hash  string `json:"hash"`
	Msg   string `json:"msg"`
}

type GenerateResult struct {
	Name string `json:"name"`
	Skey string `json:"skey"`
	Vkey string `json:"vkey"`
	Msg  string `json:"msg"`
}

type TreeHashResult struct {
	Size int64  `json:"size"`
	Hash string `json:"hash"`
}

type ProofResult struct {
	Label string `json:"label"`
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
	// Go's own proof for the same sizes over its own tree (when it has the leaves).
	GoProof []string `json:"go_proof"`
}

type TileHash struct {
	Index int64  `json:"index"`
	Hash  string `json:"hash"`
}

type TileResult struct {
	Path string `json:"path"`
	// tlog.ReadTileData of the same tile over Go's own tree (when it has the leaves).
	GoData string     `json:"go_data,omitempty"`
	Hashes []TileHash `json:"hashes"`
}

type NewTilesResult struct {
	Old   int64    `json:"old"`
	New   int64    `json:"new"`
	Paths []string `json:"paths"`
}

type Result struct {
	GoVersionNote string           `json:"go_packages"`
	Open          []OpenResult     `json:"open"`
	VerifierKeys  []VerifierResult `json:"verifier_keys"`
	Sign          []SignResult     `json:"sign"`
	Generate      []GenerateResult `json:"generate"`
	StoredHashes  []string         `json:"stored_hashes"`
	TreeHashes    []TreeHashResult `json:"tree_hashes"`
	Inclusion     []ProofResult    `json:"inclusion"`
	Consistency   []ProofResult    `json:"consistency"`
	Tiles         []TileResult     `json:"tiles"`
	NewTiles      []NewTilesResult `json:"new_tiles"`
	Published     *PublishedResult `json:"published,omitempty"`
	Failures      []string         `json:"failures"`
}

var res = Result{
	GoVersionNote: "golang.org/x/mod/sumdb/{note,tlog}",
	Failures:      []string{},
}

func fail(format string, args ...interface{}) {
	res.Failures = append(res.Failures, fmt.Sprintf(format, args...))
}

func die(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "interop: "+format+"\n", args...)
	os.Exit(2)
}

func hashes(list []string, what string) []tlog.Hash {
	out := make([]tlog.Hash, 0, len(list))
	for i, s := range list {
		h, err := tlog.ParseHash(s)
		if err != nil {
			die("%s[%d]: %v (%q)", what, i, err, s)
		}
		out = append(out, h)
	}
	return out
}

func hash(s, what string) tlog.Hash {
	h, err := tlog.ParseHash(s)
	if err != nil {
		die("%s: %v (%q)", what, err, s)
	}
	return h
}

func strs(hs []tlog.Hash) []string {
	out := make([]string, 0, len(hs))
	for _, h := range hs {
		out = append(out, h.String())
	}
	return out
}

func sigs(list []note.Signature) []Sig {
	out := []Sig{}
	for _, s := range list {
		out = append(out, Sig{Name: s.Name, Hash: fmt.Sprintf("%08x", s.Hash)})
	}
	return out
}

func errKind(err error) string {
	var inv *note.InvalidSignatureError
	var unv *note.UnverifiedNoteError
	switch {
	case errors.As(err, &inv):
		return "invalid_signature"
	case errors.As(err, &unv):
		return "unverified"
	case err.Error() == "malformed note":
		return "malformed"
	default:
		return "other"
	}
}

func check(label string, expect *bool, ok bool, err error) {
	if expect == nil || *expect == ok {
		return
	}
	if ok {
		fail("%s: Go accepted, expected rejection", label)
	} else {
		fail("%s: Go rejected, expected acceptance: %v", label, err)
	}
}

// memory is Go's own stored-hash tree.
type memory []tlog.Hash

func (m memory) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, 0, len(indexes))
	for _, i := range indexes {
		if i < 0 || i >= int64(len(m)) {
			return nil, fmt.Errorf("no stored hash %d (have %d)", i, len(m))
		}
		out = append(out, m[i])
	}
	return out, nil
}

func main() {
	var in io.Reader = os.Stdin
	if len(os.Args) > 1 && os.Args[1] != "-" {
		f, err := os.Open(os.Args[1])
		if err != nil {
			die("%v", err)
		}
		defer f.Close()
		in = f
	}
	var job Job
	dec := json.NewDecoder(in)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&job); err != nil {
		die("reading job: %v", err)
	}

	runNotes(&job)
	tree := runTree(&job)
	runTiles(&job, tree)
	if job.Published != nil {
		runPublished(job.Published)
	}

	out, err := json.MarshalIndent(&res, "", "  ")
	if err != nil {
		die("encoding result: %v", err)
	}
	os.Stdout.Write(append(out, '\n'))
	if len(res.Failures) > 0 {
		for _, f := range res.Failures {
			fmt.Fprintf(os.Stderr, "interop: FAIL %s\n", f)
		}
		os.Exit(1)
	}
}

func runNotes(job *Job) {
	res.Open = []OpenResult{}
	for _, o := range job.Open {
		r := OpenResult{Label: o.Label, Sigs: []Sig{}, UnverifiedSigs: []Sig{}}
		var vs []note.Verifier
		var keyErr error
		for _, k := range o.Vkeys {
			v, err := note.NewVerifier(k)
			if err != nil {
				keyErr = fmt.Errorf("verifier key %q: %v", k, err)
				break
			}
			vs = append(vs, v)
		}
		var n *note.Note
		var err error
		if keyErr != nil {
			// Reported as a refusal: the key, not the note, is what Go refused.
			err = keyErr
			r.Error = err.Error()
			r.ErrorKind = "bad_key"
		} else if n, err = note.Open([]byte(o.Msg), note.VerifierList(vs...)); err != nil {
			r.Error = err.Error()
			r.ErrorKind = errKind(err)
			var unv *note.UnverifiedNoteError
			if errors.As(err, &unv) {
				r.Text = unv.Note.Text
				r.UnverifiedSigs = sigs(unv.Note.UnverifiedSigs)
			}
		} else {
			r.OK = true
			r.Text = n.Text
			r.Sigs = sigs(n.Sigs)
			r.UnverifiedSigs = sigs(n.UnverifiedSigs)
			if len(n.Sigs) == 0 {
				fail("open %s: Open succeeded without a verified signature", o.Label)
			}
		}
		check("open "+o.Label, o.ExpectOK, r.OK, err)
		if r.OK && o.WantText != nil && *o.WantText != r.Text {
			fail("open %s: Go's text %q differs from the expected %q", o.Label, r.Text, *o.WantText)
		}
		res.Open = append(res.Open, r)
	}

	res.VerifierKeys = []VerifierResult{}
	for _, k := range job.VerifierKeys {
		r := VerifierResult{Vkey: k}
		v, err := note.NewVerifier(k)
		if err != nil {
			r.Error = err.Error()
		} else {
			r.OK = true
			r.Name = v.Name()
			r.Hash = fmt.Sprintf("%08x", v.KeyHash())
		}
		res.VerifierKeys = append(res.VerifierKeys, r)
	}

	res.Sign = []SignResult{}
	for _, s := range job.Sign {
		r := SignResult{Label: s.Label}
		signer, err := note.NewSigner(s.Skey)
		if err == nil {
			r.Name = signer.Name()
			r.Hash = fmt.Sprintf("%08x", signer.KeyHash())
			var msg []byte
			msg, err = note.Sign(&note.Note{Text: s.Text}, signer)
			r.Msg = string(msg)
		}
		if err != nil {
			r.Error = err.Error()
		} else {
			r.OK = true
		}
		res.Sign = append(res.Sign, r)
	}

	res.Generate = []GenerateResult{}
	for _, g := range job.Generate {
		skey, vkey, err := note.GenerateKey(rand.Reader, g.Name)
		if err != nil {
			die("GenerateKey(%q): %v", g.Name, err)
		}
		signer, err := note.NewSigner(skey)
		if err != nil {
			die("NewSigner(GenerateKey(%q)): %v", g.Name, err)
		}
		msg, err := note.Sign(&note.Note{Text: g.Text}, signer)
		if err != nil {
			die("Sign with generated key %q: %v", g.Name, err)
		}
		// Go must open its own note, or the comparison means nothing.
		v, err := note.NewVerifier(vkey)
		if err != nil {
			die("NewVerifier(GenerateKey(%q)): %v", g.Name, err)
		}
		if _, err := note.Open(msg, note.VerifierList(v)); err != nil {
			die("Go cannot open its own note: %v", err)
		}
		res.Generate = append(res.Generate, GenerateResult{Name: g.Name, Skey: skey, Vkey: vkey, Msg: string(msg)})
	}
}

// runTree builds Go's own tree from the leaves (if any) and checks proofs.
func runTree(job *Job) memory {
	var tree memory
	for i, leaf := range hashes(job.Leaves, "leaves") {
		hs, err := tlog.StoredHashesForRecordHash(int64(i), leaf, tree)
		if err != nil {
			die("StoredHashesForRecordHash(%d): %v", i, err)
		}
		tree = append(tree, hs...)
	}
	n := int64(len(job.Leaves))
	res.StoredHashes = strs(tree)

	res.TreeHashes = []TreeHashResult{}
	for _, size := range job.TreeSizes {
		if size < 0 || size > n {
			die("tree_sizes: %d is outside the %d leaves given", size, n)
		}
		h, err := tlog.TreeHash(size, tree)
		if err != nil {
			die("TreeHash(%d): %v", size, err)
		}
		res.TreeHashes = append(res.TreeHashes, TreeHashResult{Size: size, Hash: h.String()})
	}

	res.Inclusion = []ProofResult{}
	for _, p := range job.Inclusion {
		r := ProofResult{Label: p.Label, GoProof: []string{}}
		err := tlog.CheckRecord(tlog.RecordProof(hashes(p.Proof, p.Label+" proof")),
			p.Size, hash(p.Root, p.Label+" root"), p.Index, hash(p.Leaf, p.Label+" leaf"))
		r.OK = err == nil
		if err != nil {
			r.Error = err.Error()
		}
		check("inclusion "+p.Label, p.ExpectOK, r.OK, err)
		if p.Size <= n && p.Index >= 0 && p.Index < p.Size {
			gp, err := tlog.ProveRecord(p.Size, p.Index, tree)
			if err != nil {
				fail("inclusion %s: ProveRecord: %v", p.Label, err)
			}
			r.GoProof = strs(gp)
		}
		res.Inclusion = append(res.Inclusion, r)
	}

	res.Consistency = []ProofResult{}
	for _, p := range job.Consistency {
		r := ProofResult{Label: p.Label, GoProof: []string{}}
		err := tlog.CheckTree(tlog.TreeProof(hashes(p.Proof, p.Label+" proof")),
			p.New, hash(p.NewRoot, p.Label+" new_root"), p.Old, hash(p.OldRoot, p.Label+" old_root"))
		r.OK = err == nil
		if err != nil {
			r.Error = err.Error()
		}
		check("consistency "+p.Label, p.ExpectOK, r.OK, err)
		if p.New <= n && p.Old >= 1 && p.Old <= p.New {
			gp, err := tlog.ProveTree(p.New, p.Old, tree)
			if err != nil {
				fail("consistency %s: ProveTree: %v", p.Label, err)
			}
			r.GoProof = strs(gp)
		}
		res.Consistency = append(res.Consistency, r)
	}
	return tree
}

func runTiles(job *Job, tree memory) {
	n := int64(len(job.Leaves))
	res.Tiles = []TileResult{}
	for _, tj := range job.Tiles {
		t := tlog.Tile{H: tileHeight, L: tj.Level, N: tj.Index, W: tj.Width}
		data, err := base64.StdEncoding.DecodeString(tj.Data)
		if err != nil {
			die("tile %s: data is not base64: %v", t.Path(), err)
		}
		r := TileResult{Path: t.Path(), Hashes: []TileHash{}}
		if len(data) != t.W*tlog.HashSize {
			fail("tile %s: %d bytes of data, want %d", t.Path(), len(data), t.W*tlog.HashSize)
		}
		// Every hash the tile holds: at each of its 8 levels, the complete
		// subtrees its width covers.
		for j := 0; j < tileHeight; j++ {
			count := int64(t.W >> uint(j))
			first := t.N << uint(tileHeight) >> uint(j)
			for k := int64(0); k < count; k++ {
				index := tlog.StoredHashIndex(t.L*tileHeight+j, first+k)
				h, err := tlog.HashFromTile(t, data, index)
				if err != nil {
					fail("tile %s: HashFromTile(%d): %v", t.Path(), index, err)
					continue
				}
				if n > 0 && index < int64(len(tree)) && h != tree[index] {
					fail("tile %s: HashFromTile(%d) = %v, Go's own tree has %v", t.Path(), index, h, tree[index])
				}
				r.Hashes = append(r.Hashes, TileHash{Index: index, Hash: h.String()})
			}
		}
		if n > 0 && (t.N<<uint(tileHeight)+int64(t.W))<<uint(t.L*tileHeight) <= n {
			gd, err := tlog.ReadTileData(t, tree)
			if err != nil {
				fail("tile %s: ReadTileData: %v", t.Path(), err)
			}
			r.GoData = base64.StdEncoding.EncodeToString(gd)
		}
		res.Tiles = append(res.Tiles, r)
	}

	res.NewTiles = []NewTilesResult{}
	for _, p := range job.NewTiles {
		if p[0] < 0 || p[1] < p[0] {
			die("new_tiles: bad pair %v", p)
		}
		r := NewTilesResult{Old: p[0], New: p[1], Paths: []string{}}
		for _, t := range tlog.NewTiles(tileHeight, p[0], p[1]) {
			r.Paths = append(r.Paths, t.Path())
		}
		res.NewTiles = append(res.NewTiles, r)
	}
}

// jobTiles reads C2SP tiles from a job's directory or URL: Go names them
// with the height (tile/8/L/N), C2SP without it (tile/L/N).
type jobTiles struct{ job *PublishedJob }

func (d jobTiles) Height() int { return tileHeight }

func (d jobTiles) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		path := strings.Replace(t.Path(), "tile/8/", "tile/", 1)
		data, err := d.job.read(path)
		if err != nil {
			return nil, err
		}
		out[i] = data
	}
	return out, nil
}

func (d jobTiles) SaveTiles(tiles []tlog.Tile, data [][]byte) {}

// bundleEntry is entry i of a C2SP entry bundle: big-endian uint16 lengths,
// each followed by that many bytes.
func bundleEntry(data []byte, i int) ([]byte, error) {
	for k := 0; ; k++ {
		if len(data) < 2 {
			return nil, fmt.Errorf("bundle ends before entry %d", i)
		}
		n := int(data[0])<<8 | int(data[1])
		if len(data) < 2+n {
			return nil, fmt.Errorf("bundle entry %d is cut short", k)
		}
		if k == i {
			return data[2 : 2+n], nil
		}
		data = data[2+n:]
	}
}

func runPublished(job *PublishedJob) {
	r := &PublishedResult{Entries: []string{}}
	res.Published = r
	v, err := note.NewVerifier(job.Vkey)
	if err != nil {
		die("published: verifier key: %v", err)
	}
	raw, err := job.read("checkpoint")
	if err != nil {
		fail("published: %v", err)
		return
	}
	n, err := note.Open(raw, note.VerifierList(v))
	if err != nil {
		fail("published: the checkpoint does not open with the log's key: %v", err)
		return
	}
	if job.MirrorVkey != "" {
		m, err := newCosigV1(job.MirrorVkey)
		if err != nil {
			die("published: mirror key: %v", err)
		}
		// An invalid signature by a known key fails the whole note.
		if _, err := note.Open(raw, note.VerifierList(v, m)); err != nil {
			fail("published: the checkpoint does not open with the log's and the mirror's keys: %v", err)
			return
		}
		if m.timestamp == 0 {
			fail("published: the checkpoint carries no cosignature by the mirror's key")
			return
		}
		r.MirrorTimestamp = m.timestamp
	}
	// tlog-checkpoint body: origin, size, base64 root, then extension lines.
	lines := strings.Split(n.Text, "\n")
	if len(lines) < 4 {
		fail("published: checkpoint body has %d lines", len(lines))
		return
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil {
		fail("published: checkpoint size %q: %v", lines[1], err)
		return
	}
	root, err := tlog.ParseHash(lines[2])
	if err != nil {
		fail("published: checkpoint root %q: %v", lines[2], err)
		return
	}
	r.Origin, r.Size, r.Root = lines[0], size, root.String()
	tree := tlog.Tree{N: size, Hash: root}
	reader := tlog.TileHashReader(tree, jobTiles{job})
	th, err := tlog.TreeHash(size, reader)
	if err != nil {
		fail("published: TreeHash over the tiles: %v", err)
		return
	}
	if th != root {
		fail("published: tiles give root %v, checkpoint says %v", th, root)
		return
	}
	for _, i := range job.Indexes {
		if i < 0 || i >= size {
			die("published: index %d outside a tree of %d", i, size)
		}
		n := i / 256
		w := size - n*256
		if w > 256 {
			w = 256
		}
		name := strings.Replace(tlog.Tile{H: tileHeight, L: 0, N: n, W: int(w)}.Path(), "tile/8/0/", "tile/entries/", 1)
		bundle, err := job.read(name)
		if err != nil {
			fail("published: entry %d: %v", i, err)
			continue
		}
		entry, err := bundleEntry(bundle, int(i%256))
		if err != nil {
			fail("published: entry %d: %v", i, err)
			continue
		}
		proof, err := tlog.ProveRecord(size, i, reader)
		if err != nil {
			fail("published: ProveRecord(%d): %v", i, err)
			continue
		}
		if err := tlog.CheckRecord(proof, size, root, i, tlog.RecordHash(entry)); err != nil {
			fail("published: CheckRecord(%d): %v", i, err)
			continue
		}
		r.Proved++
		r.Entries = append(r.Entries, base64.StdEncoding.EncodeToString(entry))
	}
}
