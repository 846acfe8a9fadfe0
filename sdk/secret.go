package sdk

import (
	"fmt"
	"os"
	"strings"
)

// Secrets never sit in a configuration: a field NAME has the forms
// NAME_file (a file holding it, trailing newline removed) and NAME_env
// (an environment variable). CheckSecret and ReadSecret are the one
// implementation of that rule for every source and sink.

// CheckSecret adds a field error unless exactly one of NAME_file and
// NAME_env is set (or neither, when the secret is optional) and it can be
// read now.
func CheckSecret(verr *ValidationError, name, file, env string, required bool) {
	switch {
	case file != "" && env != "":
		verr.Add(name+"_file", "set either %s_file or %s_env, not both", name, name)
	case file != "":
		if f, err := os.Open(file); err != nil {
			verr.Add(name+"_file", "%v", err)
		} else {
			f.Close()
		}
	case env != "":
		if _, ok := os.LookupEnv(env); !ok {
			verr.Add(name+"_env", "the environment variable %s is not set", env)
		}
	case required:
		verr.Add(name+"_file", "the %s is required: set %s_file or %s_env", strings.ReplaceAll(name, "_", " "), name, name)
	}
}

// ReadSecret reads a secret from its file or its environment variable;
// "" when neither is set. Its errors never contain the secret.
func ReadSecret(file, env string) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("read secret: %w", err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	if env != "" {
		v, ok := os.LookupEnv(env)
		if !ok {
			return "", fmt.Errorf("the environment variable %s is not set", env)
		}
		return v, nil
	}
	return "", nil
}
