package main

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/config/clouds"
	"github.com/sollwert/sollwert/sdk"
)

// Defaults of the tunables. 200 servers a page is well under Nova's
// default max_limit (1000) and keeps one page's JSON small.
const (
	defaultPageSize       = 200
	defaultConcurrency    = 4
	defaultMaxRetries     = 5
	defaultMaxRetryWait   = 60 * time.Second
	defaultRequestTimeout = 60 * time.Second
	defaultDomain         = "Default"
)

// config is a job's configuration as the user writes it. There are two
// ways to say where and who: a clouds.yaml file and the name of one of its
// clouds, or the explicit attributes. Secrets come only from NAME_file or
// NAME_env (or, for the clouds.yaml form, from the file itself and its
// secure.yaml beside it).
type config struct {
	CloudsYAML string `json:"clouds_yaml"`
	Cloud      string `json:"cloud"`

	AuthURL                         string `json:"auth_url"`
	Username                        string `json:"username"`
	PasswordFile                    string `json:"password_file"`
	PasswordEnv                     string `json:"password_env"`
	ApplicationCredentialID         string `json:"application_credential_id"`
	ApplicationCredentialSecretFile string `json:"application_credential_secret_file"`
	ApplicationCredentialSecretEnv  string `json:"application_credential_secret_env"`
	ProjectName                     string `json:"project_name"`
	ProjectID                       string `json:"project_id"`
	DomainName                      string `json:"domain_name"`
	ProjectDomainName               string `json:"project_domain_name"`
	CAFile                          string `json:"ca_file"`

	Region         string `json:"region"`
	Interface      string `json:"interface"`
	PageSize       int    `json:"page_size"`
	Concurrency    int    `json:"concurrency"`
	MaxRetries     int    `json:"max_retries"`
	MaxRetryWait   string `json:"max_retry_wait"`
	RequestTimeout string `json:"request_timeout"`
}

var fields = []sdk.Field{
	{Name: "clouds_yaml", Type: "string", Description: "path of a clouds.yaml file; with cloud, instead of the explicit attributes"},
	{Name: "cloud", Type: "string", Description: "name of the cloud in clouds_yaml"},
	{Name: "auth_url", Type: "string", Description: "Keystone URL, e.g. https://keystone.example.net:5000/v3"},
	{Name: "username", Type: "string", Description: "user name for password authentication"},
	{Name: "password_file", Type: "string", Description: "file holding the user's password"},
	{Name: "password_env", Type: "string", Description: "environment variable holding the user's password"},
	{Name: "application_credential_id", Type: "string", Description: "application credential id, instead of username and password"},
	{Name: "application_credential_secret_file", Type: "string", Description: "file holding the application credential's secret"},
	{Name: "application_credential_secret_env", Type: "string", Description: "environment variable holding the application credential's secret"},
	{Name: "project_name", Type: "string", Description: "project to scope the token to (password authentication)"},
	{Name: "project_id", Type: "string", Description: "project id, instead of project_name"},
	{Name: "domain_name", Type: "string", Description: `domain of the user, and of the project unless project_domain_name is set (default "Default")`},
	{Name: "project_domain_name", Type: "string", Description: "domain of the project when it differs from the user's"},
	{Name: "ca_file", Type: "string", Description: "CA certificate(s) the cloud's endpoints must chain to (explicit form; clouds.yaml has cacert)"},
	{Name: "region", Type: "string", Description: "region of the compute and network endpoints (default: the first in the catalog, or the cloud's region_name)"},
	{Name: "interface", Type: "string", Description: `endpoint interface: "public" (default) or "internal"`},
	{Name: "page_size", Type: "number", Description: "servers, ports and security groups asked for per request (default 200)"},
	{Name: "concurrency", Type: "number", Description: "port requests in flight at once (default 4)"},
	{Name: "max_retries", Type: "number", Description: "retries of one request answered HTTP 429 (default 5)"},
	{Name: "max_retry_wait", Type: "duration", Description: `longest Retry-After the pull waits for (default "60s"); a longer one fails the run`},
	{Name: "request_timeout", Type: "duration", Description: `bound on one HTTP request (default "60s"); the job's timeout bounds the whole pull`},
}

// settings is a checked configuration. It holds no secret: those are
// read by credentials at the start of a pull.
type settings struct {
	c              config
	availability   gophercloud.Availability
	maxRetryWait   time.Duration
	requestTimeout time.Duration
}

// parseConfig decodes and checks a configuration without touching the
// network; every problem is a field error naming its attribute. With
// clouds_yaml it reads that file, since what it holds decides what else
// is needed.
func parseConfig(raw json.RawMessage) (settings, error) {
	c := config{
		PageSize:       defaultPageSize,
		Concurrency:    defaultConcurrency,
		MaxRetries:     defaultMaxRetries,
		MaxRetryWait:   defaultMaxRetryWait.String(),
		RequestTimeout: defaultRequestTimeout.String(),
	}
	if err := sdk.DecodeConfig(raw, &c); err != nil {
		return settings{}, err
	}
	verr := &sdk.ValidationError{}
	s := settings{c: c}

	switch c.Interface {
	case "", "public":
		s.availability = gophercloud.AvailabilityPublic
	case "internal":
		s.availability = gophercloud.AvailabilityInternal
	default:
		verr.Add("interface", "%q is not public or internal", c.Interface)
	}
	if c.PageSize < 1 || c.PageSize > 1000 {
		verr.Add("page_size", "%d is outside 1-1000", c.PageSize)
	}
	if c.Concurrency < 1 || c.Concurrency > 32 {
		verr.Add("concurrency", "%d is outside 1-32", c.Concurrency)
	}
	if c.MaxRetries < 0 || c.MaxRetries > 20 {
		verr.Add("max_retries", "%d is outside 0-20", c.MaxRetries)
	}
	s.maxRetryWait = duration(verr, "max_retry_wait", c.MaxRetryWait)
	s.requestTimeout = duration(verr, "request_timeout", c.RequestTimeout)

	sdk.CheckSecret(verr, "password", c.PasswordFile, c.PasswordEnv, false)
	sdk.CheckSecret(verr, "application_credential_secret", c.ApplicationCredentialSecretFile, c.ApplicationCredentialSecretEnv, false)
	hasPassword := c.PasswordFile != "" || c.PasswordEnv != ""
	hasAppSecret := c.ApplicationCredentialSecretFile != "" || c.ApplicationCredentialSecretEnv != ""

	if c.CloudsYAML != "" || c.Cloud != "" {
		checkCloudsForm(verr, c)
		return s, verr.Err()
	}

	// The explicit form.
	if c.AuthURL == "" {
		verr.Add("auth_url", "is required (or name a cloud with clouds_yaml and cloud)")
	} else if u, err := url.Parse(c.AuthURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		verr.Add("auth_url", "%q is not an http(s) URL such as https://keystone.example.net:5000/v3", c.AuthURL)
	}
	switch {
	case c.Username != "" && c.ApplicationCredentialID != "":
		verr.Add("application_credential_id", "set either username (with a password) or application_credential_id, not both")
	case c.Username != "":
		if !hasPassword {
			verr.Add("password_file", "username needs a password: set password_file or password_env")
		}
		if hasAppSecret {
			verr.Add("application_credential_secret_file", "applies to application_credential_id, not to username")
		}
		if c.ProjectName == "" && c.ProjectID == "" {
			verr.Add("project_name", "is required with username (or set project_id): the token must be scoped to a project")
		}
		if c.ProjectName != "" && c.ProjectID != "" {
			verr.Add("project_id", "set either project_name or project_id, not both")
		}
	case c.ApplicationCredentialID != "":
		if !hasAppSecret {
			verr.Add("application_credential_secret_file", "application_credential_id needs its secret: set application_credential_secret_file or application_credential_secret_env")
		}
		if hasPassword {
			verr.Add("password_file", "applies to username, not to application_credential_id")
		}
		for name, v := range map[string]string{"project_name": c.ProjectName, "project_id": c.ProjectID, "project_domain_name": c.ProjectDomainName} {
			if v != "" {
				verr.Add(name, "an application credential is bound to its project; remove %s", name)
			}
		}
	default:
		verr.Add("username", "set username (with password_file or password_env) or application_credential_id (with its secret)")
	}
	return s, verr.Err()
}

// checkCloudsForm checks the clouds.yaml form: the file, the cloud in it,
// and that no explicit attribute competes with it.
func checkCloudsForm(verr *sdk.ValidationError, c config) {
	for name, v := range map[string]string{
		"auth_url": c.AuthURL, "username": c.Username, "application_credential_id": c.ApplicationCredentialID,
		"project_name": c.ProjectName, "project_id": c.ProjectID, "domain_name": c.DomainName,
		"project_domain_name": c.ProjectDomainName, "ca_file": c.CAFile,
	} {
		if v != "" {
			verr.Add(name, "comes from the cloud's entry in clouds_yaml; remove %s or clouds_yaml", name)
		}
	}
	switch {
	case c.CloudsYAML == "":
		verr.Add("clouds_yaml", "cloud %q needs the clouds.yaml file it is in: set clouds_yaml", c.Cloud)
		return
	case c.Cloud == "":
		verr.Add("cloud", "is required with clouds_yaml: the name of one of its clouds")
		return
	}
	ao, _, _, err := parseClouds(c, "", "")
	if err != nil {
		var nf clouds.ErrFileNotFound
		if errors.As(err, &nf) {
			verr.Add("clouds_yaml", "%s does not exist or cannot be read", c.CloudsYAML)
		} else if errors.Is(err, errNoAuthSection) {
			verr.Add("cloud", "cloud %q in %s has no auth section (auth_url and credentials)", c.Cloud, c.CloudsYAML)
		} else if cloudMissing(err) {
			verr.Add("cloud", "%q is not a cloud in %s", c.Cloud, c.CloudsYAML)
		} else {
			verr.Add("clouds_yaml", "%s: %v", c.CloudsYAML, err)
		}
		return
	}
	if ao.IdentityEndpoint == "" {
		verr.Add("cloud", "cloud %q in %s has no auth.auth_url", c.Cloud, c.CloudsYAML)
	}
}

// errNoAuthSection is a cloud entry without "auth:".
var errNoAuthSection = errors.New("the cloud's entry has no auth section")

var cloudNotFoundRE = regexp.MustCompile(`^cloud ".*" not found in clouds\.yaml$`)

func cloudMissing(err error) bool { return cloudNotFoundRE.MatchString(err.Error()) }

// yamlValueRE matches the values yaml.v2 quotes in its type errors, which
// could be a password written in the wrong place.
var yamlValueRE = regexp.MustCompile("`[^`]*`")

// parseClouds reads the cloud's entry from clouds_yaml (and a secure.yaml
// beside it), with the job's region, interface and secrets over it.
func parseClouds(c config, password, appSecret string) (ao gophercloud.AuthOptions, eo gophercloud.EndpointOpts, tlsConfig *tls.Config, err error) {
	// gophercloud v2.16 dereferences a missing auth section.
	defer func() {
		if r := recover(); r != nil {
			err = errNoAuthSection
		}
	}()
	opts := []clouds.ParseOption{clouds.WithLocations(c.CloudsYAML), clouds.WithCloudName(c.Cloud)}
	if c.Region != "" {
		opts = append(opts, clouds.WithRegion(c.Region))
	}
	if c.Interface != "" {
		opts = append(opts, clouds.WithEndpointType(c.Interface))
	}
	if password != "" {
		opts = append(opts, clouds.WithPassword(password))
	}
	if appSecret != "" {
		opts = append(opts, clouds.WithApplicationCredentialSecret(appSecret))
	}
	ao, eo, tlsConfig, err = clouds.Parse(opts...)
	var nf clouds.ErrFileNotFound
	if err != nil && !errors.As(err, &nf) {
		err = errors.New(yamlValueRE.ReplaceAllString(err.Error(), "`…`"))
	}
	return ao, eo, tlsConfig, err
}

func duration(verr *sdk.ValidationError, field, v string) time.Duration {
	d, err := time.ParseDuration(v)
	switch {
	case err != nil:
		verr.Add(field, "%q is not a duration such as \"60s\"", v)
	case d <= 0:
		verr.Add(field, "must be longer than 0s")
	}
	return d
}

// describeAuth names the account for logs: never a secret.
func (s settings) describeAuth() string {
	c := s.c
	switch {
	case c.CloudsYAML != "":
		return fmt.Sprintf("cloud %q from %s", c.Cloud, c.CloudsYAML)
	case c.ApplicationCredentialID != "":
		return fmt.Sprintf("application credential %s at %s", c.ApplicationCredentialID, c.AuthURL)
	}
	project := c.ProjectName
	if project == "" {
		project = c.ProjectID
	}
	return fmt.Sprintf("user %q, project %q at %s", c.Username, project, c.AuthURL)
}
