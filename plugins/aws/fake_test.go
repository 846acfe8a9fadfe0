package main

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeEC2 answers EC2's Query API (and STS's AssumeRole) on 127.0.0.1
// from files: POST form bodies with Action=..., XML answers in the
// documented shape, NextToken pages. The region of a request is read
// from its SigV4 credential scope, as one endpoint serves every region
// here. Faults are injected per region, action and page.
type fakeEC2 struct {
	// dir holds REGION/ACTION.xml for the first page and
	// REGION/ACTION.TOKEN.xml for the page NextToken=TOKEN asks for.
	dir string
	// pages, when set, is used instead of dir: "REGION/ACTION/TOKEN".
	pages map[string][]byte
	// delay holds every EC2 answer back (or until the request is cancelled).
	delay time.Duration

	mu       sync.Mutex
	faults   []*fault
	calls    []call
	inFlight int
	maxIn    int
}

// fault makes matching requests fail: times > 0 that many times, -1
// always. An empty region matches every region and token "*" every page.
type fault struct {
	region, action, token string
	times                 int
	status                int
	file                  string // under testdata/errors
}

// call is one request the fake saw.
type call struct {
	region, service, action, token, keyID string
	form                                  url.Values
}

const ec2NS = "http://ec2.amazonaws.com/doc/2016-11-15/"

func startFake(t testing.TB, f *fakeEC2) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(f) // binds 127.0.0.1
	t.Cleanup(srv.Close)
	return srv
}

func (f *fakeEC2) addFault(fl fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults = append(f.faults, &fl)
}

func (f *fakeEC2) seen() []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]call(nil), f.calls...)
}

func (f *fakeEC2) maxInFlight() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.maxIn
}

// scope reads "Credential=KEY/DATE/REGION/SERVICE/aws4_request" out of
// a SigV4 Authorization header.
func scope(auth string) (keyID, region, service string, ok bool) {
	const alg = "AWS4-HMAC-SHA256 "
	if !strings.HasPrefix(auth, alg) {
		return "", "", "", false
	}
	for _, part := range strings.Split(strings.TrimPrefix(auth, alg), ",") {
		v, found := strings.CutPrefix(strings.TrimSpace(part), "Credential=")
		if !found {
			continue
		}
		s := strings.Split(v, "/")
		if len(s) != 5 || s[4] != "aws4_request" {
			return "", "", "", false
		}
		return s[0], s[2], s[3], true
	}
	return "", "", "", false
}

func (f *fakeEC2) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "the Query API takes POST", http.StatusMethodNotAllowed)
		return
	}
	keyID, region, service, ok := scope(r.Header.Get("Authorization"))
	if !ok {
		writeError(w, http.StatusUnauthorized, "AuthFailure", "AWS was not able to validate the provided access credentials")
		return
	}
	if err := r.ParseForm(); err != nil {
		writeError(w, http.StatusBadRequest, "InvalidParameterValue", "malformed form body")
		return
	}
	action, token := r.PostForm.Get("Action"), r.PostForm.Get("NextToken")

	f.mu.Lock()
	f.calls = append(f.calls, call{region: region, service: service, action: action, token: token, keyID: keyID, form: r.PostForm})
	f.inFlight++
	f.maxIn = max(f.maxIn, f.inFlight)
	var hit *fault
	for _, fl := range f.faults {
		if (fl.region == "" || fl.region == region) && fl.action == action && (fl.token == "*" || fl.token == token) && fl.times != 0 {
			if fl.times > 0 {
				fl.times--
			}
			hit = fl
			break
		}
	}
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inFlight--
		f.mu.Unlock()
	}()

	if service == "sts" {
		if action != "AssumeRole" {
			writeError(w, http.StatusBadRequest, "InvalidAction", "not served by the fake: "+action)
			return
		}
		f.serveFile(w, filepath.Join("testdata", "sts-AssumeRole.xml"))
		return
	}
	if f.delay > 0 {
		select {
		case <-time.After(f.delay):
		case <-r.Context().Done():
			return
		}
	}
	if hit != nil {
		body, err := os.ReadFile(filepath.Join("testdata", "errors", hit.file))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
		w.WriteHeader(hit.status)
		w.Write(body)
		return
	}
	if r.PostForm.Get("Version") != "2016-11-15" {
		writeError(w, http.StatusBadRequest, "InvalidParameterValue", "unknown API version")
		return
	}
	if f.pages != nil {
		body, ok := f.pages[region+"/"+action+"/"+token]
		if !ok {
			f.serveMissing(w, region, action, token)
			return
		}
		w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
		w.Write(body)
		return
	}
	name := action + ".xml"
	if token != "" {
		name = action + "." + token + ".xml"
	}
	path := filepath.Join(f.dir, region, name)
	if _, err := os.Stat(path); err != nil {
		f.serveMissing(w, region, action, token)
		return
	}
	f.serveFile(w, path)
}

// serveMissing answers a region with no fixture as an empty region, and
// a page with no fixture as EC2 answers an unknown token.
func (f *fakeEC2) serveMissing(w http.ResponseWriter, region, action, token string) {
	if token != "" {
		writeError(w, http.StatusBadRequest, "InvalidParameterValue", "The parameter NextToken is not valid")
		return
	}
	list := map[string]string{"DescribeInstances": "reservationSet", "DescribeSecurityGroups": "securityGroupInfo"}[action]
	if list == "" {
		writeError(w, http.StatusBadRequest, "InvalidAction", "The action "+action+" is not valid for this web service.")
		return
	}
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?>` + "\n<" + action + `Response xmlns="` + ec2NS + `"><requestId>empty-` + region +
		`</requestId><` + list + `/></` + action + "Response>\n"))
}

func (f *fakeEC2) serveFile(w http.ResponseWriter, path string) {
	body, err := os.ReadFile(path)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.Write(body)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.WriteHeader(status)
	w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?>` + "\n<Response><Errors><Error><Code>" + code + "</Code><Message>" + msg +
		"</Message></Error></Errors><RequestID>fake-request</RequestID></Response>\n"))
}
