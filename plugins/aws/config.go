package main

import (
	"encoding/json"
	"net/url"
	"regexp"
	"slices"
	"time"

	"github.com/sollwert/sollwert/sdk"
)

// Defaults for the knobs a job may leave out.
const (
	defaultConcurrency = 4
	defaultMaxAttempts = 5
	defaultMaxBackoff  = 20 * time.Second
	maxConcurrency     = 32
	maxMaxAttempts     = 20
)

// config is a job's configuration as the user writes it. Credentials come
// from the SDK's standard chain (environment, shared files, SSO, web
// identity, container and instance roles) or the named profile; a job may
// instead name a static key pair, whose secret half comes only from a file
// or an environment variable.
type config struct {
	Regions     []string            `json:"regions"`
	Profile     string              `json:"profile"`
	RoleARN     string              `json:"role_arn"`
	ExternalID  string              `json:"external_id"`
	EndpointURL string              `json:"endpoint_url"`
	Filters     map[string][]string `json:"filters"`
	Concurrency int                 `json:"concurrency"`
	MaxAttempts int                 `json:"max_attempts"`
	MaxBackoff  string              `json:"max_backoff"`
	AccessKeyID string              `json:"access_key_id"`
	// The secret access key: secret_access_key_file or _env (sdk.CheckSecret).
	SecretAccessKeyFile string `json:"secret_access_key_file"`
	SecretAccessKeyEnv  string `json:"secret_access_key_env"`
}

var fields = []sdk.Field{
	{Name: "regions", Type: "list(string)", Required: true, Description: `EC2 regions to pull, e.g. ["eu-central-1", "us-east-1"]`},
	{Name: "profile", Type: "string", Description: "named profile of the shared config and credentials files (default: the SDK's standard chain, AWS_PROFILE included)"},
	{Name: "role_arn", Type: "string", Description: "IAM role to assume with STS before pulling, e.g. arn:aws:iam::123456789012:role/sollwert-read"},
	{Name: "external_id", Type: "string", Description: "external ID the role's trust policy asks for (with role_arn)"},
	{Name: "endpoint_url", Type: "string", Description: "EC2 (and STS) endpoint instead of the regional AWS one: tests, LocalStack, a VPC endpoint"},
	{Name: "filters", Type: "object", Description: `DescribeInstances filters, name to values, e.g. {"tag:env": ["prod"]}`},
	{Name: "concurrency", Type: "number", Description: "regions pulled at once (default 4, at most 32)"},
	{Name: "max_attempts", Type: "number", Description: "attempts per API call, retries on throttling and 5xx included (default 5, at most 20)"},
	{Name: "max_backoff", Type: "duration", Description: `longest wait between two attempts (default "20s")`},
	{Name: "access_key_id", Type: "string", Description: "static access key ID, instead of the standard chain (with secret_access_key_file or _env)"},
	{Name: "secret_access_key_file", Type: "string", Description: "file holding the secret access key for access_key_id"},
	{Name: "secret_access_key_env", Type: "string", Description: "environment variable holding the secret access key for access_key_id"},
}

// settings is a checked configuration.
type settings struct {
	regions     []string
	profile     string
	roleARN     string
	externalID  string
	endpointURL string
	filters     map[string][]string
	concurrency int
	maxAttempts int
	maxBackoff  time.Duration
	accessKeyID string
	secretFile  string
	secretEnv   string
}

var (
	regionRE  = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)
	roleARNRE = regexp.MustCompile(`^arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=,.@/-]+$`)
)

// parseConfig decodes and checks a configuration without touching the
// network; every problem is a field error naming its attribute.
func parseConfig(raw json.RawMessage) (settings, error) {
	c := config{Concurrency: defaultConcurrency, MaxAttempts: defaultMaxAttempts, MaxBackoff: defaultMaxBackoff.String()}
	if err := sdk.DecodeConfig(raw, &c); err != nil {
		return settings{}, err
	}
	verr := &sdk.ValidationError{}
	s := settings{
		profile: c.Profile, roleARN: c.RoleARN, externalID: c.ExternalID, endpointURL: c.EndpointURL,
		filters: c.Filters, concurrency: c.Concurrency, maxAttempts: c.MaxAttempts,
		accessKeyID: c.AccessKeyID, secretFile: c.SecretAccessKeyFile, secretEnv: c.SecretAccessKeyEnv,
	}

	if len(c.Regions) == 0 {
		verr.Add("regions", `is required: list the regions to pull, e.g. ["eu-central-1"]`)
	}
	for _, r := range c.Regions {
		switch {
		case !regionRE.MatchString(r):
			verr.Add("regions", "%q is not a region name such as \"eu-central-1\"", r)
		case slices.Contains(s.regions, r):
			verr.Add("regions", "%q is listed twice", r)
		default:
			s.regions = append(s.regions, r)
		}
	}
	if c.RoleARN != "" && !roleARNRE.MatchString(c.RoleARN) {
		verr.Add("role_arn", "%q is not an IAM role ARN such as \"arn:aws:iam::123456789012:role/NAME\"", c.RoleARN)
	}
	if c.ExternalID != "" && c.RoleARN == "" {
		verr.Add("external_id", "applies only together with role_arn")
	}
	if c.EndpointURL != "" {
		u, err := url.Parse(c.EndpointURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
			verr.Add("endpoint_url", "%q is not an http(s) URL such as \"https://ec2.eu-central-1.amazonaws.com\"", redactURL(c.EndpointURL))
		}
	}
	for name, values := range c.Filters {
		if name == "" {
			verr.Add("filters", "a filter needs a name, e.g. \"tag:env\"")
		}
		if len(values) == 0 {
			verr.Add("filters", "filter %q has no values", name)
		}
	}
	if c.Concurrency < 1 || c.Concurrency > maxConcurrency {
		verr.Add("concurrency", "must be between 1 and %d, not %d", maxConcurrency, c.Concurrency)
	}
	if c.MaxAttempts < 1 || c.MaxAttempts > maxMaxAttempts {
		verr.Add("max_attempts", "must be between 1 and %d, not %d", maxMaxAttempts, c.MaxAttempts)
	}
	if d, err := time.ParseDuration(c.MaxBackoff); err != nil {
		verr.Add("max_backoff", "%q is not a duration such as \"20s\"", c.MaxBackoff)
	} else if d <= 0 {
		verr.Add("max_backoff", "must be longer than 0s")
	} else {
		s.maxBackoff = d
	}

	// Static keys: the ID in the config, the secret from a file or the
	// environment only, and both halves or neither.
	sdk.CheckSecret(verr, "secret_access_key", c.SecretAccessKeyFile, c.SecretAccessKeyEnv, c.AccessKeyID != "")
	if c.AccessKeyID == "" && (c.SecretAccessKeyFile != "" || c.SecretAccessKeyEnv != "") {
		verr.Add("access_key_id", "is required with secret_access_key_file or secret_access_key_env")
	}
	if c.AccessKeyID != "" && c.Profile != "" {
		verr.Add("profile", "set either profile or access_key_id, not both")
	}
	return s, verr.Err()
}

// redactURL keeps a URL's user information out of messages.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
