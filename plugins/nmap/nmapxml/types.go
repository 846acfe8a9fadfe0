package nmapxml

// Run is what the XML says about the scan as a whole: <nmaprun>'s
// attributes and the elements beside the hosts. Next fills it in as it
// reads; Finished and HostStats are set once <runstats> was read.
type Run struct {
	Scanner          string
	Args             string
	Start            int64
	StartStr         string
	Version          string
	XMLOutputVersion string
	ProfileName      string
	ScanInfo         []ScanInfo
	Verbose          int
	Debugging        int
	// Targets are the target specifications nmap reports on, usually
	// those it skipped.
	Targets     []Target
	PreScripts  []Script
	PostScripts []Script
	Finished    *Finished
	HostStats   *HostStats
}

// ScanInfo is one <scaninfo>: a scan type over a protocol's ports.
type ScanInfo struct {
	Type        string
	Protocol    string
	NumServices int
	Services    string
	ScanFlags   string
}

// Target is a <target> nmap could not use.
type Target struct {
	Specification string
	Status        string
	Reason        string
}

// TaskProgress is one --stats-every report.
type TaskProgress struct {
	Task      string
	Time      int64
	Percent   float64
	Remaining int64 // seconds
	Etc       int64
}

// Finished is <runstats><finished>.
type Finished struct {
	Time     int64
	TimeStr  string
	Summary  string
	Elapsed  string
	Exit     string // "success" or "error"
	ErrorMsg string
}

// HostStats is <runstats><hosts>.
type HostStats struct {
	Up, Down, Total int
}

// Host is one <host>.
type Host struct {
	StartTime   int64
	EndTime     int64
	Comment     string
	Status      Status
	Addresses   []Address
	Hostnames   []Hostname
	ExtraPorts  []ExtraPorts
	Ports       []Port
	OS          OS
	Uptime      Uptime
	Distance    int
	Times       Times
	HostScripts []Script
}

// Status is <status>: whether the host is up.
type Status struct {
	State     string // "up", "down", "unknown", "skipped"
	Reason    string
	ReasonTTL int
}

// Address is one <address>.
type Address struct {
	Addr     string
	AddrType string // "ipv4", "ipv6" or "mac"
	Vendor   string
}

// Hostname is one <hostnames><hostname>.
type Hostname struct {
	Name string
	Type string // "user", "PTR"
}

// ExtraPorts is <ports><extraports>: ports not listed one by one.
type ExtraPorts struct {
	State   string
	Count   int
	Reasons []ExtraReasons
}

// ExtraReasons is <extraports><extrareasons>.
type ExtraReasons struct {
	Reason string
	Count  int
	Proto  string
	Ports  string
}

// Port is one <ports><port>.
type Port struct {
	Protocol string
	ID       uint16
	State    PortState
	Owner    string
	Service  Service
	Scripts  []Script
}

// PortState is <port><state>.
type PortState struct {
	State     string
	Reason    string
	ReasonTTL int
	ReasonIP  string
}

// Service is <port><service>.
type Service struct {
	Name       string
	Product    string
	Version    string
	ExtraInfo  string
	Tunnel     string
	Method     string
	Conf       int
	OSType     string
	DeviceType string
	Hostname   string
	ServiceFP  string
	CPEs       []string
}

// Script is one <script>: its id and its output as text. Its structured
// <elem> and <table> children are checked and skipped.
type Script struct {
	ID     string
	Output string
}

// OS is <os>.
type OS struct {
	PortsUsed    []PortUsed
	Matches      []OSMatch
	Fingerprints []string
}

// PortUsed is <os><portused>.
type PortUsed struct {
	State string
	Proto string
	ID    uint16
}

// OSMatch is <os><osmatch>.
type OSMatch struct {
	Name     string
	Accuracy int
	Line     int
	Classes  []OSClass
}

// OSClass is <osmatch><osclass>.
type OSClass struct {
	Type     string
	Vendor   string
	Family   string
	Gen      string
	Accuracy int
	CPEs     []string
}

// Uptime is <uptime>.
type Uptime struct {
	Seconds  int64
	LastBoot string
}

// Times is <times>, nmap's round-trip estimates in microseconds, kept as
// written.
type Times struct {
	SRTT   string
	RTTVar string
	To     string
}
