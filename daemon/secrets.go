package daemon

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/hashicorp/go-hclog"
	"github.com/sollwert/sollwert/daemon/config"
	"github.com/sollwert/sollwert/secrets"
	"github.com/sollwert/sollwert/secrets/vault"
)

// secretFiles is where the daemon's load and reload paths turn a
// configuration's Vault references (NAME_vault) into files, and the
// references into NAME_file, before anything else reads the
// configuration: sources, sinks and plugins then read their secrets as
// they always do (sdk.ReadSecret), and never learn of Vault.
//
// One Vault client lives as long as the vault block stays the same. Every
// load reads every reference again; a reload that cannot read one is
// refused like any bad configuration, and the running one keeps its
// files.
type secretFiles struct {
	log hclog.Logger
	mgr *secrets.Manager

	mu     sync.Mutex // held from stage until finish: one stage at a time
	client *vault.Client
	vault  config.Vault
}

func newSecretFiles(dataDir string, log hclog.Logger) *secretFiles {
	return &secretFiles{log: log, mgr: secrets.NewManager(secrets.Options{DataDir: dataDir, Logger: log})}
}

// secretStage is a configuration's secrets read and written, waiting for
// the configuration to be applied (finish(true)) or refused.
type secretStage struct {
	s      *secretFiles
	stage  *secrets.Stage
	client *vault.Client
	vault  config.Vault
	fresh  bool // client was made for this stage
	done   bool
}

// stage reads cfg's references and returns cfg with each NAME_vault
// replaced by NAME_file. Until the stage finishes, no other can start.
// Errors name the position of the vault block or of the attribute, the
// job or sink, and the Vault path; never a value or a token.
func (s *secretFiles) stage(ctx context.Context, cfg *config.Config) (*config.Config, *secretStage, error) {
	s.mu.Lock()
	st := &secretStage{s: s}
	var refs []secrets.Ref
	for _, j := range cfg.Jobs {
		for _, r := range j.VaultRefs {
			refs = append(refs, r.Ref)
		}
	}
	for _, sk := range cfg.Sinks {
		for _, r := range sk.VaultRefs {
			refs = append(refs, r.Ref)
		}
	}
	fail := func(err error) (*config.Config, *secretStage, error) {
		st.stage.Abort()
		if st.fresh {
			st.client.Close()
		}
		s.mu.Unlock()
		return nil, nil, err
	}
	var resolver secrets.Resolver
	if len(refs) > 0 {
		if cfg.Vault == nil {
			return fail(errors.New("secrets in Vault need a vault block"))
		}
		st.vault = *cfg.Vault
		if s.client != nil && s.vault.Same(st.vault) {
			st.client = s.client
		} else {
			c, err := vault.New(ctx, vaultConfig(st.vault), s.log.Named("vault"))
			if err != nil {
				return fail(fmt.Errorf("%s: %w", position(st.vault.Range.Filename, st.vault.Range.Start.Line, st.vault.Range.Start.Column), err))
			}
			st.client, st.fresh = c, true
		}
		resolver = st.client
	}
	stage, err := s.mgr.Stage(ctx, resolver, refs)
	if err != nil {
		return fail(refErrors(cfg, err))
	}
	st.stage = stage
	out, err := cfg.WithSecretFiles(stage.Path)
	if err != nil {
		return fail(err)
	}
	return out, st, nil
}

// finish ends the stage: applied, its files and client become the
// running ones and what only the old configuration used goes; refused,
// what the stage added goes. A nil or finished stage does nothing.
func (st *secretStage) finish(applied bool) {
	if st == nil || st.done {
		return
	}
	st.done = true
	s := st.s
	defer s.mu.Unlock()
	if !applied {
		st.stage.Abort()
		if st.fresh {
			st.client.Close()
		}
		return
	}
	st.stage.Commit()
	if st.client != s.client {
		if s.client != nil {
			s.client.Close()
		}
		s.client, s.vault = st.client, st.vault
	}
	if n := st.stage.Len(); n > 0 {
		s.log.Info("secrets read from Vault into files", "secrets", n, "dir", s.mgr.Dir())
	}
}

// close removes every secret file and stops the Vault client.
func (s *secretFiles) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.mgr.Close()
	if s.client != nil {
		s.client.Close()
		s.client = nil
	}
	return err
}

// ResolveSecrets reads cfg's Vault references into files for a command
// that uses a configuration without a daemon (scan, rules validate). It
// returns cfg with NAME_file in their place and a function that removes
// the files; cfg itself when it refers to no secret in Vault.
func ResolveSecrets(ctx context.Context, cfg *config.Config, log hclog.Logger) (*config.Config, func() error, error) {
	if !cfg.HasVaultRefs() {
		return cfg, func() error { return nil }, nil
	}
	s := newSecretFiles(cfg.DataDir, log)
	out, st, err := s.stage(ctx, cfg)
	if err != nil {
		return nil, nil, errors.Join(err, s.close())
	}
	st.finish(true)
	return out, s.close, nil
}

func vaultConfig(v config.Vault) vault.Config {
	return vault.Config{Address: v.Address, CAFile: v.CAFile, Namespace: v.Namespace, Auth: v.Auth,
		TokenFile: v.TokenFile, TokenEnv: v.TokenEnv, RoleID: v.RoleID, RoleIDFile: v.RoleIDFile,
		SecretIDFile: v.SecretIDFile, SecretIDEnv: v.SecretIDEnv, AppRoleMount: v.AppRoleMount}
}

// refErrors puts each reference that could not be read where the
// configuration names it, once per job or sink that does.
func refErrors(cfg *config.Config, err error) error {
	var reads []*secrets.ReadError
	var joined interface{ Unwrap() []error }
	if errors.As(err, &joined) {
		for _, e := range joined.Unwrap() {
			var re *secrets.ReadError
			if errors.As(e, &re) {
				reads = append(reads, re)
			}
		}
	}
	if len(reads) == 0 {
		return err
	}
	var out []error
	for _, re := range reads {
		at := func(owner string, refs []config.VaultRef) {
			for _, r := range refs {
				if r.Ref == re.Ref {
					out = append(out, fmt.Errorf("%s: %s: %s: cannot read from Vault: %w",
						position(r.Range.Filename, r.Range.Start.Line, r.Range.Start.Column), owner, r.Attr, re))
				}
			}
		}
		for _, j := range cfg.Jobs {
			at(fmt.Sprintf("job %q", j.Name), j.VaultRefs)
		}
		for _, sk := range cfg.Sinks {
			at(fmt.Sprintf("sink %q", sk.Name), sk.VaultRefs)
		}
	}
	return errors.Join(out...)
}

func position(file string, line, col int) string { return fmt.Sprintf("%s:%d:%d", file, line, col) }
