package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/digitalocean/go-libvirt"
	"github.com/digitalocean/go-libvirt/socket/dialers"
)

// conn is an open libvirt connection whose calls end when ctx does.
//
// go-libvirt's calls take no context. Closing the socket ends every call
// in flight with libvirt.ErrInterrupted, so a context.AfterFunc that
// closes it is what makes a pull honour cancellation.
type conn struct {
	lv   *libvirt.Libvirt
	raw  net.Conn
	stop func() bool
}

// connect dials the daemon and opens t.remote on it. Dialling, the TLS
// handshake and the opening together are bounded by t.connectTimeout and
// by ctx; from then on the connection lives until ctx ends or Close.
func connect(ctx context.Context, t target) (*conn, error) {
	dctx, cancel := context.WithTimeout(ctx, t.connectTimeout)
	defer cancel()
	raw, err := dial(dctx, t)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", t.where(), ctxErr(dctx, err))
	}
	stopDial := context.AfterFunc(dctx, func() { raw.Close() })
	lv := libvirt.NewWithDialer(dialers.NewAlreadyConnected(raw))
	err = lv.ConnectToURI(libvirt.ConnectURI(t.remote))
	if !stopDial() || err != nil {
		raw.Close()
		if err == nil {
			err = context.DeadlineExceeded
		}
		return nil, fmt.Errorf("open %s at %s: %w", t.remote, t.where(), ctxErr(dctx, err))
	}
	return &conn{lv: lv, raw: raw, stop: context.AfterFunc(ctx, func() { raw.Close() })}, nil
}

// Close says goodbye to the daemon when it still listens; a connection
// that ctx already closed just goes.
func (c *conn) Close() {
	if c.stop() {
		// Disconnect waits for the daemon's answer; the AfterFunc is
		// gone, so bound it ourselves.
		done := make(chan struct{})
		go func() { c.lv.Disconnect(); close(done) }()
		select {
		case <-done:
		case <-time.After(2 * time.Second):
		}
	}
	c.raw.Close()
}

func (t target) where() string {
	if t.transport == "tls" {
		return "tls://" + t.addr
	}
	return "unix:" + t.socket
}

func dial(ctx context.Context, t target) (net.Conn, error) {
	var d net.Dialer
	if t.transport == "unix" {
		return d.DialContext(ctx, "unix", t.socket)
	}
	cfg, err := t.tlsConfig()
	if err != nil {
		return nil, err
	}
	raw, err := d.DialContext(ctx, "tcp", t.addr)
	if err != nil {
		return nil, err
	}
	tc := tls.Client(raw, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, fmt.Errorf("tls handshake: %w", err)
	}
	// After the handshake the daemon sends one byte: 1 when it accepts
	// the client's certificate (and address), anything else when not.
	stop := context.AfterFunc(ctx, func() { tc.SetReadDeadline(time.Now()) })
	var b [1]byte
	_, err = tc.Read(b[:])
	if !stop() {
		err = ctx.Err()
	}
	if err == nil && b[0] != 1 || errors.Is(err, io.EOF) {
		tc.Close()
		return nil, errRefused
	}
	if err != nil {
		tc.Close()
		return nil, fmt.Errorf("wait for the daemon's check of our certificate: %w", err)
	}
	return tc, nil
}

// errRefused is the daemon's answer to a certificate it does not accept:
// it closes the connection (or sends a byte other than 1).
var errRefused = errors.New("the daemon refused our client certificate or address (is it signed by the daemon's ca_file, allowed by its tls_allowed_dn_list?)")

// ctxErr puts the context's reason in front when the context ended the
// call: a closed socket says little about why.
func ctxErr(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("%w (%v)", cerr, err)
	}
	return err
}
