package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sollwert/sollwert/model"
)

// TestImportFeedsTheJob: a scan made by hand with the real nmap, imported
// as a run of a job: its hosts and the rules' deviations appear as if the
// job had scanned; a scan of other targets, or a broken file, is refused
// and changes nothing.
func TestImportFeedsTheJob(t *testing.T) {
	requireNmap(t)
	allowed, _ := listen(t)
	rogue, _ := listen(t)
	e := newEnv(t)
	ports := fmt.Sprintf("%d,%d", allowed, rogue)
	e.writeConfig(loopbackJob("lo", ports, "") + expectBlock(allowed))
	e.start()
	xml := filepath.Join(e.dir, "scan.xml")
	if out, err := exec.Command("nmap", "-n", "-sT", "-Pn", "-p", ports, "-oX", xml, "127.0.0.1").CombinedOutput(); err != nil {
		t.Fatalf("nmap: %v\n%s", err, out)
	}
	imp := func(file string) (int, string) {
		cmd := exec.Command(binary, "import", file, "--job", "lo", "--url", "http://"+e.api)
		out, _ := cmd.CombinedOutput()
		return cmd.ProcessState.ExitCode(), string(out)
	}
	if code, out := imp(xml); code != 0 || !strings.Contains(out, "1 hosts up") {
		t.Fatalf("import: exit %d\n%s", code, out)
	}
	devs := e.deviations("")
	if len(devs) != 1 || devs[0].Port != uint16(rogue) {
		t.Fatalf("deviations %+v", devs)
	}
	var runs []model.Run
	e.get("/v1/jobs/lo/runs", &runs)
	if len(runs) != 1 || runs[0].Trigger != "import" || runs[0].Status != model.RunSucceeded {
		t.Fatalf("runs %+v", runs)
	}

	// A scan of more than the job's targets, and a cut-off file: refused.
	other := filepath.Join(e.dir, "other.xml")
	if out, err := exec.Command("nmap", "-n", "-sT", "-Pn", "-p", ports, "-oX", other, "127.0.0.1", "127.0.0.2").CombinedOutput(); err != nil {
		t.Fatalf("nmap: %v\n%s", err, out)
	}
	if code, out := imp(other); code != 1 || !strings.Contains(out, "the file scanned 2 addresses") {
		t.Fatalf("import of other targets: exit %d\n%s", code, out)
	}
	b, _ := os.ReadFile(xml)
	cut := filepath.Join(e.dir, "cut.xml")
	if err := os.WriteFile(cut, b[:len(b)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out := imp(cut); code != 1 || !strings.Contains(out, "nothing was changed") {
		t.Fatalf("import of a cut file: exit %d\n%s", code, out)
	}
	if devs := e.deviations(""); len(devs) != 1 {
		t.Fatalf("a refused import changed the deviations: %+v", devs)
	}
}
