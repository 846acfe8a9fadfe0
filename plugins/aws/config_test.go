package main

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sollwert/sollwert/sdk"
)

func TestConfigDefaultsAndValidForms(t *testing.T) {
	t.Setenv("SOLLWERT_TEST_AWS_SECRET", "x")
	tests := []struct {
		name string
		raw  string
		ok   func(settings) bool
	}{
		{"one region takes the defaults", `{"regions": ["eu-central-1"]}`, func(s settings) bool {
			return s.concurrency == defaultConcurrency && s.maxAttempts == defaultMaxAttempts && s.maxBackoff == defaultMaxBackoff
		}},
		{"a profile, a role with an external ID, and filters", `{"regions": ["us-east-1", "us-gov-west-1", "cn-north-1"], "profile": "audit",
			"role_arn": "arn:aws:iam::123456789012:role/path/sollwert-read", "external_id": "x", "filters": {"tag:env": ["prod"]}}`,
			func(s settings) bool {
				return s.profile == "audit" && len(s.regions) == 3 && s.filters["tag:env"][0] == "prod"
			}},
		{"static keys from the environment", `{"regions": ["eu-west-1"], "access_key_id": "AKIAEXAMPLE", "secret_access_key_env": "SOLLWERT_TEST_AWS_SECRET"}`,
			func(s settings) bool {
				return s.accessKeyID == "AKIAEXAMPLE" && s.secretEnv == "SOLLWERT_TEST_AWS_SECRET"
			}},
		{"retries and concurrency", `{"regions": ["eu-west-1"], "concurrency": 8, "max_attempts": 10, "max_backoff": "2s", "endpoint_url": "http://127.0.0.1:4566"}`,
			func(s settings) bool {
				return s.concurrency == 8 && s.maxAttempts == 10 && s.maxBackoff == 2*time.Second
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := parseConfig(json.RawMessage(tc.raw))
			if err != nil {
				t.Fatal(err)
			}
			if !tc.ok(s) {
				t.Errorf("settings %+v", s)
			}
		})
	}
}

func TestConfigErrorsNameTheField(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "absent")
	tests := []struct {
		name, raw, field, text string
	}{
		{"no regions", `{}`, "regions", "is required"},
		{"an empty list of regions", `{"regions": []}`, "regions", "is required"},
		{"a region that is no region", `{"regions": ["Frankfurt"]}`, "regions", "not a region name"},
		{"a region twice", `{"regions": ["eu-west-1", "eu-west-1"]}`, "regions", "twice"},
		{"regions as a string", `{"regions": "eu-west-1"}`, "regions", "must be a list"},
		{"an unknown attribute", `{"regions": ["eu-west-1"], "region": "eu-west-1"}`, "region", "unknown attribute"},
		{"a role that is no role ARN", `{"regions": ["eu-west-1"], "role_arn": "sollwert-read"}`, "role_arn", "not an IAM role ARN"},
		{"an external ID without a role", `{"regions": ["eu-west-1"], "external_id": "x"}`, "external_id", "role_arn"},
		{"an endpoint that is no URL", `{"regions": ["eu-west-1"], "endpoint_url": "127.0.0.1:4566"}`, "endpoint_url", "not an http(s) URL"},
		{"a filter without values", `{"regions": ["eu-west-1"], "filters": {"tag:env": []}}`, "filters", "no values"},
		{"concurrency 0", `{"regions": ["eu-west-1"], "concurrency": 0}`, "concurrency", "between 1 and 32"},
		{"too many attempts", `{"regions": ["eu-west-1"], "max_attempts": 100}`, "max_attempts", "between 1 and 20"},
		{"a backoff that is no duration", `{"regions": ["eu-west-1"], "max_backoff": "soon"}`, "max_backoff", "not a duration"},
		{"a key ID without its secret", `{"regions": ["eu-west-1"], "access_key_id": "AKIAEXAMPLE"}`, "secret_access_key_file", "required"},
		{"a secret without its key ID", `{"regions": ["eu-west-1"], "secret_access_key_file": "/etc/hostname"}`, "access_key_id", "required"},
		{"a secret file that is not there", `{"regions": ["eu-west-1"], "access_key_id": "AKIAEXAMPLE", "secret_access_key_file": "` + missing + `"}`, "secret_access_key_file", "no such file"},
		{"a secret variable that is not set", `{"regions": ["eu-west-1"], "access_key_id": "AKIAEXAMPLE", "secret_access_key_env": "SOLLWERT_TEST_UNSET_VARIABLE"}`, "secret_access_key_env", "not set"},
		{"a secret given inline", `{"regions": ["eu-west-1"], "access_key_id": "AKIAEXAMPLE", "secret_access_key": "hunter2"}`, "secret_access_key", "unknown attribute"},
		{"a profile and static keys", `{"regions": ["eu-west-1"], "profile": "p", "access_key_id": "AKIAEXAMPLE", "secret_access_key_file": "/etc/hostname"}`, "profile", "not both"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseConfig(json.RawMessage(tc.raw))
			var verr *sdk.ValidationError
			if !errors.As(err, &verr) {
				t.Fatalf("want field errors, got %v", err)
			}
			for _, f := range verr.Fields {
				if f.Field == tc.field && strings.Contains(f.Message, tc.text) {
					return
				}
			}
			t.Errorf("errors %v: none names %s saying %q", verr.Fields, tc.field, tc.text)
		})
	}
}

// Every field a ValidationError can name is one Describe lists.
func TestDescribeListsEveryConfigField(t *testing.T) {
	listed := map[string]bool{}
	for _, f := range fields {
		listed[f.Name] = true
	}
	for _, n := range configFieldNames() {
		if !listed[n] {
			t.Errorf("config field %q is not in Describe's fields", n)
		}
	}
}

func configFieldNames() []string {
	b, _ := json.Marshal(config{})
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
