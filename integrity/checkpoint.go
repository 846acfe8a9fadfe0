package integrity

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/sollwert/sollwert/model"
	"github.com/sollwert/sollwert/store"
)

// message is what a checkpoint's signature covers.
func message(c *model.Checkpoint) []byte {
	return []byte("sollwert checkpoint v1\n" + c.Tenant + "\n" + strconv.FormatUint(c.Seq, 10) + "\n" + c.Head + "\n" +
		c.Time.UTC().Format(time.RFC3339Nano) + "\n")
}

// Sign makes the checkpoint of a chain head.
func Sign(key ed25519.PrivateKey, h store.ChainHead, now time.Time) model.Checkpoint {
	c := model.Checkpoint{Tenant: h.Tenant, Seq: h.Seq, Head: hex.EncodeToString(h.Hash[:]), Time: now.UTC(),
		PublicKey: hex.EncodeToString(key.Public().(ed25519.PublicKey))}
	c.Signature = hex.EncodeToString(ed25519.Sign(key, message(&c)))
	return c
}

// CheckSignature reports whether pub signed c as it stands.
func CheckSignature(c *model.Checkpoint, pub ed25519.PublicKey) error {
	sig, err := hex.DecodeString(c.Signature)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return errors.New("its signature is not an ed25519 signature")
	}
	if !ed25519.Verify(pub, message(c), sig) {
		if c.PublicKey != hex.EncodeToString(pub) {
			return fmt.Errorf("it was not signed by the key given (it names key %.16s…)", c.PublicKey)
		}
		return errors.New("its signature does not match its content: it was changed")
	}
	return nil
}

// Exporter keeps checkpoints where the store's disk cannot rewrite them.
type Exporter interface {
	Export(ctx context.Context, cs []model.Checkpoint) error
}

// FileExporter appends checkpoints to a file, one JSON object per line.
// Point it at storage that only appends (chattr +a, a WORM mount, a log
// shipper's spool, another machine's file system): that is what makes a
// rewrite of the whole store detectable.
type FileExporter struct{ Path string }

// Export appends cs and syncs the file.
func (f FileExporter) Export(_ context.Context, cs []model.Checkpoint) error {
	if len(cs) == 0 {
		return nil
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for i := range cs {
		if err := enc.Encode(&cs[i]); err != nil {
			return fmt.Errorf("export checkpoints: %w", err)
		}
	}
	file, err := os.OpenFile(f.Path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("export checkpoints: %w", err)
	}
	_, err = file.Write(buf.Bytes())
	if err == nil {
		err = file.Sync()
	}
	if cerr := file.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("export checkpoints to %s: %w", f.Path, err)
	}
	return nil
}

// ReadExported reads checkpoints as FileExporter writes them.
func ReadExported(r io.Reader, name string) ([]model.Checkpoint, error) {
	var out []model.Checkpoint
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		var c model.Checkpoint
		if err := json.Unmarshal(b, &c); err != nil {
			return nil, fmt.Errorf("%s:%d: not a checkpoint: %w", name, line, err)
		}
		if c.Tenant == "" || c.Seq == 0 || c.Head == "" {
			return nil, fmt.Errorf("%s:%d: not a checkpoint: tenant, seq or head missing", name, line)
		}
		out = append(out, c)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return out, nil
}

// Checkpointer signs the head of every chain that moved, stores the
// checkpoint and exports it, every Interval and once more when it stops.
type Checkpointer struct {
	Store     *store.Store
	Key       ed25519.PrivateKey
	Exporters []Exporter
	Interval  time.Duration
	Log       hclog.Logger
	// Now is the clock (nil: time.Now).
	Now func() time.Time

	mu sync.Mutex // one round at a time
	// pending holds, per exporter, what it has not taken yet: an export
	// that fails is tried again with the next round.
	pending [][]model.Checkpoint
}

// Run checkpoints at once (what a daemon that crashed wrote since its
// last checkpoint is vouched for without waiting an interval), then every
// Interval until ctx ends, then once more.
func (c *Checkpointer) Run(ctx context.Context) {
	if _, err := c.Checkpoint(ctx); err != nil {
		c.Log.Error("checkpoint failed", "error", err)
	}
	tick := time.NewTicker(c.Interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			if _, err := c.Checkpoint(context.WithoutCancel(ctx)); err != nil {
				c.Log.Error("final checkpoint failed", "error", err)
			}
			return
		case <-tick.C:
			if _, err := c.Checkpoint(ctx); err != nil {
				c.Log.Error("checkpoint failed", "error", err)
			}
		}
	}
}

// Checkpoint signs, stores and exports a checkpoint of every chain whose
// head moved since its last one, and returns them.
func (c *Checkpointer) Checkpoint(ctx context.Context) ([]model.Checkpoint, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	heads, err := c.Store.ChainHeads()
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	var made []model.Checkpoint
	err = c.Store.Update(ctx, func(t *store.Txn) error {
		made = made[:0]
		for _, h := range heads {
			last, ok, err := t.LastCheckpoint(h.Tenant)
			if err != nil {
				return err
			}
			if ok && last.Seq >= h.Seq {
				continue
			}
			cp := Sign(c.Key, h, now())
			if err := t.PutCheckpoint(&cp); err != nil {
				return err
			}
			made = append(made, cp)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	if len(c.pending) != len(c.Exporters) {
		c.pending = make([][]model.Checkpoint, len(c.Exporters))
	}
	var errs []error
	for i, e := range c.Exporters {
		c.pending[i] = append(c.pending[i], made...)
		if err := e.Export(ctx, c.pending[i]); err != nil {
			errs = append(errs, err)
			continue
		}
		c.pending[i] = nil
	}
	for _, cp := range made {
		c.Log.Info("checkpoint", "tenant", cp.Tenant, "seq", cp.Seq, "head", cp.Head)
	}
	return made, errors.Join(errs...)
}
