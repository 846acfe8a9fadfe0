package daemon

import "github.com/sollwert/sollwert/sdk"

type sdkValidationError = sdk.ValidationError

// sourceError turns an unknown source into a field error on `source`.
func sourceError(err error) *sdk.ValidationError {
	v := &sdk.ValidationError{}
	v.Add("source", "%v", err)
	return v
}
