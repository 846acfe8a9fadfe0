package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/sollwert/sollwert/model"
	"github.com/sollwert/sollwert/store"
)

// chatReply is what Mattermost and Slack expect from a slash command.
type chatReply struct {
	ResponseType string `json:"response_type"` // ephemeral or in_channel
	Text         string `json:"text"`
}

const chatHelp = "Usage: `status` · `list [host]` · `ack ID [duration] [comment]`"

// chatCommand serves a Mattermost or Slack slash command. The token the
// chat server sends is compared in constant time (over digests, so its
// length does not show either).
func (s *Server) chatCommand(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	got, want := sha256.Sum256([]byte(r.PostForm.Get("token"))), sha256.Sum256([]byte(s.opts.ChatToken))
	if r.PostForm.Get("token") == "" || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
		writeError(w, http.StatusUnauthorized, errors.New("invalid slash-command token"))
		return
	}
	user := r.PostForm.Get("user_name")
	if user == "" {
		user = "chat"
	}
	fields := strings.Fields(r.PostForm.Get("text"))
	if len(fields) == 0 {
		writeJSON(w, http.StatusOK, chatReply{"ephemeral", chatHelp})
		return
	}
	switch fields[0] {
	case "status":
		s.chatStatus(w, r)
	case "list":
		host := ""
		if len(fields) > 1 {
			host = fields[1]
		}
		s.chatList(w, r, host)
	case "ack":
		s.chatAck(w, r, user, fields[1:])
	default:
		writeJSON(w, http.StatusOK, chatReply{"ephemeral", fmt.Sprintf("Unknown command %q. %s", fields[0], chatHelp)})
	}
}

func (s *Server) activeDeviations(r *http.Request, host string) ([]model.Deviation, error) {
	var out []model.Deviation
	err := s.opts.Store.View(r.Context(), func(t *store.Txn) error {
		return t.ForEachDeviation(tenantOf(r), func(d *model.Deviation) error {
			if d.Active() && (host == "" || d.Host == host) {
				out = append(out, *d)
			}
			return nil
		})
	})
	sort.Slice(out, func(i, j int) bool {
		if out[i].Severity.Rank() != out[j].Severity.Rank() {
			return out[i].Severity.Rank() > out[j].Severity.Rank()
		}
		return out[i].OpenedAt.Before(out[j].OpenedAt)
	})
	return out, err
}

func (s *Server) chatStatus(w http.ResponseWriter, r *http.Request) {
	devs, err := s.activeDeviations(r, "")
	if err != nil {
		writeStoreError(w, err)
		return
	}
	counts := map[model.Severity]int{}
	acked := 0
	for _, d := range devs {
		if d.State == model.StateAcknowledged {
			acked++
			continue
		}
		counts[d.Severity]++
	}
	text := fmt.Sprintf("sollwert: %d critical, %d warning, %d info open; %d acknowledged.",
		counts[model.SeverityCritical], counts[model.SeverityWarning], counts[model.SeverityInfo], acked)
	if len(devs) == 0 {
		text = "sollwert: no open deviations. :white_check_mark:"
	}
	writeJSON(w, http.StatusOK, chatReply{"in_channel", text})
}

func (s *Server) chatList(w http.ResponseWriter, r *http.Request, host string) {
	devs, err := s.activeDeviations(r, host)
	if err != nil {
		writeStoreError(w, err)
		return
	}
	if len(devs) == 0 {
		writeJSON(w, http.StatusOK, chatReply{"ephemeral", "No open deviations."})
		return
	}
	var b strings.Builder
	for i, d := range devs {
		if i == 20 {
			fmt.Fprintf(&b, "… and %d more\n", len(devs)-20)
			break
		}
		state := ""
		if d.State == model.StateAcknowledged && d.Ack != nil {
			state = " (acknowledged by " + d.Ack.By + ")"
		}
		fmt.Fprintf(&b, "`%s` **%s** %s — %s%s\n", d.ID, strings.ToUpper(string(d.Severity)), d.Subject(), d.Detail, state)
	}
	writeJSON(w, http.StatusOK, chatReply{"ephemeral", b.String()})
}

func (s *Server) chatAck(w http.ResponseWriter, r *http.Request, user string, args []string) {
	if s.opts.Acks == nil || len(args) == 0 {
		writeJSON(w, http.StatusOK, chatReply{"ephemeral", "Usage: `ack ID [duration] [comment]`"})
		return
	}
	ack := &model.Ack{By: user, Comment: "acknowledged in chat"}
	rest := args[1:]
	if len(rest) > 0 {
		if d, err := time.ParseDuration(rest[0]); err == nil && d > 0 {
			until := s.opts.Now().Add(d).UTC()
			ack.Until = &until
			rest = rest[1:]
		}
	}
	if len(rest) > 0 {
		ack.Comment = strings.Join(rest, " ")
	}
	d, err := s.opts.Acks.Acknowledge(r.Context(), tenantOf(r), args[0], ack)
	if err != nil {
		writeJSON(w, http.StatusOK, chatReply{"ephemeral", fmt.Sprintf("Cannot acknowledge `%s`: %v", args[0], err)})
		return
	}
	until := "until it resolves"
	if d.Ack.Until != nil {
		until = "until " + d.Ack.Until.Format(time.RFC3339)
	}
	writeJSON(w, http.StatusOK, chatReply{"in_channel", fmt.Sprintf("%s acknowledged `%s` %s %s: %s", user, d.ID, d.Subject(), until, d.Ack.Comment)})
}
