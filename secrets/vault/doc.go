// Package vault reads secrets from HashiCorp Vault's KV version 2 engine
// through github.com/hashicorp/vault/api. A Client logs in with a token
// (token_file or token_env) or with AppRole, keeps its token alive with
// the api's LifetimeWatcher, and logs in again (AppRole) or reads the
// token again (token) when the token cannot be renewed any more or Vault
// refuses it. It implements secrets.Resolver.
//
// No token, secret ID or secret value ever reaches a log line or an
// error: errors name the request (method and path), Vault's status and
// its error text, and the reference. Every call takes a context.
package vault
