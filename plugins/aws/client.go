package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/logging"
	"github.com/hashicorp/go-hclog"
	"github.com/sollwert/sollwert/sdk"
)

// sessionName names the role sessions sollwert opens, so CloudTrail shows
// who asked.
const sessionName = "sollwert"

// loadAWSConfig builds the SDK's configuration for a job: credentials from
// the standard chain, the named profile, or the static key pair, wrapped
// in an assumed role when role_arn is set; the SDK's standard retryer with
// the job's bounds. It reads local files (profiles) but calls no AWS API:
// credentials are fetched on the first request.
func loadAWSConfig(ctx context.Context, s settings) (aws.Config, error) {
	opts := []func(*awsconfig.LoadOptions) error{
		awsconfig.WithRegion(s.regions[0]),
		// Retries show in the plugin's debug log; requests and bodies are
		// never logged.
		awsconfig.WithLogger(sdkLogger(sdk.Logger(ctx))),
		awsconfig.WithClientLogMode(aws.LogRetries),
		awsconfig.WithRetryer(func() aws.Retryer {
			// Standard mode: exponential backoff with jitter, throttling
			// (RequestLimitExceeded) and 5xx answers retried, a client-side
			// retry quota, and a bounded number of attempts.
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = s.maxAttempts
				o.MaxBackoff = s.maxBackoff
			})
		}),
	}
	if s.profile != "" {
		opts = append(opts, awsconfig.WithSharedConfigProfile(s.profile))
	}
	if s.accessKeyID != "" {
		secret, err := sdk.ReadSecret(s.secretFile, s.secretEnv)
		if err != nil {
			return aws.Config{}, fmt.Errorf("aws: secret access key: %w", err)
		}
		if secret == "" {
			return aws.Config{}, errors.New("aws: the secret access key is empty")
		}
		opts = append(opts, awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(s.accessKeyID, secret, "")))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		// The SDK's messages name profiles and files, not key material.
		return aws.Config{}, fmt.Errorf("aws: load the SDK configuration: %w", err)
	}
	if s.roleARN != "" {
		stsClient := sts.NewFromConfig(cfg, func(o *sts.Options) {
			if s.endpointURL != "" {
				o.BaseEndpoint = aws.String(s.endpointURL)
			}
		})
		cfg.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(stsClient, s.roleARN, func(o *stscreds.AssumeRoleOptions) {
			o.RoleSessionName = sessionName
			if s.externalID != "" {
				o.ExternalID = aws.String(s.externalID)
			}
		}))
	}
	return cfg, nil
}

// sdkLogger sends the SDK's own messages (warnings about retries or
// connections; request and body logging stay off) to the plugin's log
// instead of stderr.
func sdkLogger(log hclog.Logger) logging.Logger {
	return logging.LoggerFunc(func(c logging.Classification, format string, v ...any) {
		msg := "aws sdk: " + fmt.Sprintf(format, v...)
		if c == logging.Warn {
			log.Warn(msg)
		} else {
			log.Debug(msg)
		}
	})
}

// ec2Client is the client for one region.
func ec2Client(cfg aws.Config, s settings, region string) *ec2.Client {
	return ec2.NewFromConfig(cfg, func(o *ec2.Options) {
		o.Region = region
		if s.endpointURL != "" {
			o.BaseEndpoint = aws.String(s.endpointURL)
		}
	})
}

// credentialCodes are the API error codes that mean the credentials (or
// their permissions) are the problem, not the service.
var credentialCodes = map[string]string{
	"AuthFailure":                 "the credentials were not accepted",
	"UnauthorizedOperation":       "the credentials lack permission (see the IAM policy in the plugin's README)",
	"RequestExpired":              "the request or its credentials have expired (check the clock and the session)",
	"ExpiredToken":                "the session token has expired",
	"InvalidClientTokenId":        "the access key ID is not known",
	"SignatureDoesNotMatch":       "the secret access key does not match the access key ID",
	"AccessDenied":                "access was denied (check role_arn and its trust policy)",
	"OptInRequired":               "the account is not subscribed to EC2 in this region",
	"UnrecognizedClientException": "the credentials were not recognised",
}

// explain wraps an API error with what it means for the operator. The
// SDK's error text names the operation, the HTTP status, the request ID
// and the service's code and message; none of them carries a secret.
func explain(err error) error {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		if hint, ok := credentialCodes[ae.ErrorCode()]; ok {
			return fmt.Errorf("%s: %w", hint, err)
		}
	}
	return err
}
