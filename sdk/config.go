package sdk

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strings"
)

// DecodeConfig decodes a job's configuration object into the struct
// pointed to by into, strictly: an attribute the struct does not know, a
// value of the wrong type, or trailing data is a *ValidationError naming
// the attribute, so the daemon can point at it in the user's file.
// Attributes absent from the object keep the values into already holds,
// so set defaults first.
func DecodeConfig(raw json.RawMessage, into any) error {
	if len(bytes.TrimSpace(raw)) == 0 {
		raw = json.RawMessage("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	err := dec.Decode(into)
	if err == nil {
		if _, terr := dec.Token(); terr != io.EOF {
			err = errors.New("unexpected data after the configuration object")
		}
	}
	if err == nil {
		return nil
	}
	verr := &ValidationError{}
	// encoding/json has no typed error for unknown fields.
	if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		verr.Add(strings.Trim(f, `"`), "unknown attribute (known: %s)", strings.Join(configFields(into), ", "))
		return verr
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		field, _, _ := strings.Cut(te.Field, ".")
		verr.Add(field, "must be %s, not %s", jsonTypeName(te.Type.Kind()), te.Value)
		return verr
	}
	verr.Add("config", "%v", err)
	return verr
}

// configFields lists the JSON names of a config struct's fields.
func configFields(v any) []string {
	t := reflect.TypeOf(v)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	var names []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

func jsonTypeName(k reflect.Kind) string {
	switch k {
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Bool:
		return "true or false"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return fmt.Sprintf("a %s", k)
}
