package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/sollwert/sollwert/model"
)

// browser starts the real Chromium (Debian package chromium) headless,
// with the flags that keep it off the network but for the page it loads.
func browser(t *testing.T) context.Context {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium is not installed: run `make test` as root")
		}
		t.Skip("chromium not installed")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(bin), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1366, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancel(); cancelAlloc() })
	// A page that runs a script from a source's data would open a dialog.
	_ = chromedp.Listen(ctx, func(ev any) {
		if d, ok := ev.(*page.EventJavascriptDialogOpening); ok {
			// The test's next step then waits until its deadline.
			t.Errorf("the page opened a %s dialog: %q", d.Type, d.Message)
		}
	})
	return ctx
}

// screenshot saves the page as a test artifact in bin/test-artifacts/ui.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100: PNG
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	dir := filepath.Join("..", "..", "bin", "test-artifacts", "ui")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestWebViewInChromium: a real scan opens a deviation, the web view in a
// real browser shows it, its Acknowledge button acknowledges it (the API
// agrees), and an asset whose name is markup, reported by a plugin, shows
// that name as text.
func TestWebViewInChromium(t *testing.T) {
	requireNmap(t)
	ctx := browser(t)
	allowed, _ := listen(t)
	rogue, _ := listen(t)
	e := newEnv(t)
	plugins := filepath.Join(e.dir, "plugins")
	buildExamplePlugin(t, plugins)
	inventory := filepath.Join(e.dir, "hosts.csv")
	const evil = `<script>alert(1)</script>`
	if err := os.WriteFile(inventory, []byte("name,addresses,labels,tcp\n\""+evil+"\",198.18.0.66,team=<b>web</b>,22\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.writeConfig(fmt.Sprintf("plugin_dir = %q\n", plugins) + loopbackJob("lo", fmt.Sprintf("%d,%d", allowed, rogue), "") + expectBlock(allowed) +
		fmt.Sprintf("job \"inventory\" {\n  source = \"hostsfile\"\n  schedule = \"@every 1h\"\n  file = %q\n}\n", inventory))
	// Tokens on: the view asks for one, the API calls below carry one.
	tokens := filepath.Join(e.dir, "tokens.json")
	cfg, _ := os.ReadFile(e.cfgPath)
	cfg = bytes.Replace(cfg, []byte(fmt.Sprintf("api { listen = %q }", e.api)), []byte(fmt.Sprintf("api {\n  listen = %q\n  tokens_file = %q\n}", e.api, tokens)), 1)
	if err := os.WriteFile(e.cfgPath, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	admin := e.token(t, "admin", "admin", "*")
	ops := e.token(t, "ops", "read,ack", "default")
	e.start()
	for _, job := range []string{"lo", "inventory"} {
		if code := e.call(t, "POST", "/v1/jobs/"+job+"/run", admin); code != 202 {
			t.Fatalf("run %s: HTTP %d", job, code)
		}
		waitFor(t, func() bool {
			var runs []model.Run
			return e.getAs(t, "/v1/jobs/"+job+"/runs", admin, &runs) == 200 && len(runs) == 1 && runs[0].Status == model.RunSucceeded
		})
	}
	var devs []model.Deviation
	e.getAs(t, "/v1/deviations", admin, &devs)
	if len(devs) != 1 {
		t.Fatalf("deviations %+v", devs)
	}
	base := "http://" + e.api
	row := fmt.Sprintf(`tr[id="dev-%s"]`, devs[0].ID)
	css := func(sel string) chromedp.CSS { return chromedp.CSS(sel) }
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(css(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	// Not logged in: the login form, then the page asked for.
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/ui/"), chromedp.WaitVisible(css(`input[name="token"]`))); err != nil {
		t.Fatalf("login form: %v", err)
	}
	screenshot(t, ctx, "login")
	err := chromedp.Do(ctx,
		chromedp.SendKeys(css(`input[name="token"]`), "swt_wrong"),
		chromedp.Click(css(`form.login button`)),
		chromedp.WaitVisible(css(`p.error`)),
		chromedp.SendKeys(css(`input[name="token"]`), ops),
		chromedp.Click(css(`form.login button`)),
		chromedp.WaitVisible(css(row)),
	)
	if err != nil {
		t.Fatalf("log in: %v", err)
	}
	if got := text(row); !strings.Contains(got, fmt.Sprintf("tcp/%d", rogue)) || !strings.Contains(got, "critical") {
		t.Fatalf("the row reads %q", got)
	}
	screenshot(t, ctx, "deviations")

	err = chromedp.Do(ctx,
		chromedp.SendKeys(css(row+` input[name="author"]`), "alice"),
		chromedp.SendKeys(css(row+` input[name="comment"]`), "change 4711"),
		chromedp.Click(css(row+` button[type="submit"]`)),
		chromedp.WaitVisible(css(`p.flash`)),
	)
	if err != nil {
		t.Fatalf("acknowledge: %v", err)
	}
	if flash, state := text(`p.flash`), text(row+` td.state`); !strings.Contains(flash, "acknowledged") ||
		!strings.Contains(state, "acknowledged") || !strings.Contains(state, "alice: change 4711") {
		t.Fatalf("after the button: flash %q, state %q", flash, state)
	}
	screenshot(t, ctx, "deviations-acknowledged")
	var d model.Deviation
	e.getAs(t, "/v1/deviations/"+devs[0].ID, admin, &d)
	if d.State != model.StateAcknowledged || d.Ack == nil || d.Ack.By != "alice" {
		t.Fatalf("the API says %+v", d)
	}

	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/ui/assets/198.18.0.66"), chromedp.WaitVisible(css(`h1`))); err != nil {
		t.Fatalf("asset page: %v", err)
	}
	if heading, labels := text(`h1`), text(`table#labels`); !strings.Contains(heading, evil) || !strings.Contains(labels, "<b>web</b>") {
		t.Fatalf("hostile names not shown as text: heading %q, labels %q", heading, labels)
	}
	screenshot(t, ctx, "asset-hostile")

	for _, p := range []struct{ path, name, want string }{
		{"/ui/assets/127.0.0.1", "asset", "History"},
		{"/ui/assets", "assets", "198.18.0.66"},
		{"/ui/jobs", "jobs", "succeeded"},
		{"/ui/jobs/lo", "job", "manual"},
		{"/ui/status", "status", "Last successful scan"},
	} {
		if err := chromedp.Do(ctx, chromedp.Navigate(base+p.path), chromedp.WaitVisible(css(`main`))); err != nil {
			t.Fatalf("%s: %v", p.path, err)
		}
		if body := text(`main`); !strings.Contains(body, p.want) {
			t.Fatalf("%s lacks %q:\n%s", p.path, p.want, body)
		}
		screenshot(t, ctx, p.name)
	}
}

// getAs GETs path with a token and decodes the answer.
func (e *env) getAs(t *testing.T, path, token string, into any) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+e.api+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == 200 && into != nil {
		if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
	}
	return resp.StatusCode
}
