package model

import (
	"net/netip"
	"time"

	"github.com/sollwert/sollwert/sdk"
)

// DefaultTenant owns every record until tenants are configured.
const DefaultTenant = "default"

// Asset is a host, device or instance of one tenant, as all sources saw it
// so far.
type Asset struct {
	ID        string            `json:"id"`
	Tenant    string            `json:"tenant"`
	Addresses []sdk.Address     `json:"addresses"`
	Hostnames []string          `json:"hostnames,omitempty"`
	Status    string            `json:"status"`
	OS        string            `json:"os,omitempty"`
	Services  []Service         `json:"services,omitempty"`
	Facts     map[string]string `json:"facts,omitempty"`
	Labels    map[string]string `json:"labels,omitempty"`
	Sources   []string          `json:"sources,omitempty"`
	// Scanned is the union of the port scopes that successful runs have
	// covered on this asset: only there can a missing port mean "closed".
	Scanned map[sdk.Protocol]sdk.PortRanges `json:"scanned,omitempty"`
	// Unknown marks a host that first appeared after its job had already
	// completed a run, i.e. one that no earlier scan knew.
	Unknown       bool      `json:"unknown,omitempty"`
	FirstSeen     time.Time `json:"first_seen"`
	LastSeen      time.Time `json:"last_seen"`
	LastScanned   time.Time `json:"last_scanned"`
	LastScannedBy string    `json:"last_scanned_by,omitempty"`
	Version       uint64    `json:"version"`
}

// Service is an open port of an asset.
type Service struct {
	Protocol sdk.Protocol `json:"protocol"`
	Port     uint16       `json:"port"`
	State    string       `json:"state"`
	Name     string       `json:"name,omitempty"`
	Product  string       `json:"product,omitempty"`
	Version  string       `json:"version,omitempty"`
	// Since is when the port was first seen open in its current episode.
	Since time.Time `json:"since"`
	// Address is the IP address the port was found open on, when the
	// source said (a scan reports one address per host); a machine with
	// several addresses keeps each one's ports apart, and they leave with
	// the address when it goes to another asset.
	Address string `json:"address,omitempty"`
}

// IP returns the asset's primary IP address.
func (a *Asset) IP() netip.Addr {
	for _, ad := range a.Addresses {
		if ad.Type == "mac" {
			continue
		}
		if ip, err := netip.ParseAddr(ad.Addr); err == nil {
			return ip.Unmap()
		}
	}
	return netip.Addr{}
}

// Host is the address a human reads first: the primary IP.
func (a *Asset) Host() string {
	if ip := a.IP(); ip.IsValid() {
		return ip.String()
	}
	return a.ID
}

// Version is one state of an asset in its history.
type Version struct {
	AssetID string    `json:"asset_id"`
	Version uint64    `json:"version"`
	Time    time.Time `json:"time"`
	Source  string    `json:"source"`
	Job     string    `json:"job"`
	RunID   string    `json:"run_id"`
	Changes []Change  `json:"changes"`
	Asset   Asset     `json:"asset"`
}

// Change is one difference between two versions of an asset.
type Change struct {
	Field string `json:"field"` // status, service, hostname, address, os, fact, label
	Key   string `json:"key,omitempty"`
	From  string `json:"from,omitempty"`
	To    string `json:"to,omitempty"`
}
