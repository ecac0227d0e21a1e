package e2e

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/strata-es/strata/aggregates/account"
	"github.com/strata-es/strata/internal/httpapi"
	"github.com/strata-es/strata/internal/kafka"
	"github.com/strata-es/strata/projections"
	"github.com/strata-es/strata/projections/accounts"
	"github.com/strata-es/strata/projections/customers"
	"github.com/strata-es/strata/projections/orders"
	"github.com/twmb/franz-go/pkg/kgo"
)

// STRATA_CONSOLE_SCREENSHOT=FILE makes TestConsole write its screenshot of
// an account's timeline there (make console-screenshot: docs/console.png,
// the README's).
const screenshotEnv = "STRATA_CONSOLE_SCREENSHOT"

// unlucky is a projection that cannot apply a deposit of 13, so that the
// console has parked events to show.
var unlucky = projections.Projection{
	Name:       "unlucky",
	Aggregates: []string{account.Name},
	Apply: func(tx projections.Tx, ev projections.Event) error {
		if d, ok := ev.Data.(account.Deposited); ok && d.Amount == 13 {
			return errors.New("unlucky 13")
		}
		return tx.Put(ev.AggregateID, map[string]any{"id": ev.AggregateID, "version": ev.Version})
	},
}

// TestConsole follows an account through its history in the console, as a
// person would, in headless Chromium: search its ID with the keyboard,
// read its events, move the version slider and see the balance of each
// point; then a view and an index query, the projections' live lag chart,
// a dead letter and parked events.
func TestConsole(t *testing.T) {
	br := newBrowser(t)
	b := newBroker(t)
	ns := namespace()
	if os.Getenv(screenshotEnv) != "" && !b.external() {
		// The README's picture: the namespace a user sees.
		ns = "strata"
	}
	s := startNode(t, b, nodeOpts{ns: ns, dataDir: t.TempDir(),
		projections: []projections.Projection{accounts.Projection, orders.Projection, customers.Projection, unlucky}})

	// Ada's account: five events, balances 1000, 1500, 1300, 1550, 1475;
	// and a refused withdrawal, which writes none.
	balances := []int{1000, 1500, 1300, 1550, 1475}
	mustSend := func(id, typ, data string) map[string]any {
		t.Helper()
		code, res := s.send(t, id, typ, data)
		if code != 200 {
			t.Fatalf("%s %s: %d %v", typ, id, code, res)
		}
		return res
	}
	mustSend("acc-1", "OpenAccount", `{"owner":"ada","initial_balance":1000}`)
	mustSend("acc-1", "Deposit", `{"amount":500}`)
	mustSend("acc-1", "Withdraw", `{"amount":200}`)
	if code, res := s.send(t, "acc-1", "Withdraw", `{"amount":5000}`); code != 422 {
		t.Fatalf("overdraft: %d %v", code, res)
	}
	mustSend("acc-1", "Deposit", `{"amount":250}`)
	mustSend("acc-1", "Withdraw", `{"amount":75}`)
	mustSend("acc-2", "OpenAccount", `{"owner":"grace","initial_balance":70}`)
	mustSend("bob-1", "OpenAccount", `{"owner":"bob","initial_balance":5}`)
	mustSend("acc-13", "OpenAccount", `{"owner":"unlucky","initial_balance":0}`)
	last := mustSend("acc-13", "Deposit", `{"amount":13}`)
	// A long history, to page through: 120 deposits.
	mustSend("lin-1", "OpenAccount", `{"owner":"lin","initial_balance":0}`)
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Not s.send: its t.Fatal must not run off the test's
			// goroutine.
			for i := 0; i < 15; i++ {
				resp, err := http.Post(s.url+"/v1/commands/account/lin-1", "application/json", strings.NewReader(`{"type":"Deposit","data":{"amount":1}}`))
				if err != nil {
					t.Errorf("deposit to lin-1: %v", err)
					return
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Errorf("deposit to lin-1: %d %s", resp.StatusCode, body)
				}
			}
		}()
	}
	wg.Wait()
	var order map[string]any
	if code := s.do(t, "POST", "/v1/commands/order/o-1", `{"type":"CreateOrder","data":{"customer_id":"c-42","items":[{"sku":"A","qty":2,"unit_price":500}]}}`, &order); code != 200 {
		t.Fatalf("create order: %d %v", code, order)
	}
	// A record no one can decode, straight to the commands topic.
	names := kafka.Names{Namespace: ns}
	produce(t, kafkaClient(t, b), &kgo.Record{Topic: names.Commands(account.Name), Key: []byte("acc-dlq"), Value: []byte("{not json"),
		Headers: hdrs("content-type", "application/json", "strata-command-type", "Deposit")})
	// The views have applied everything before the pages read them.
	for _, v := range []string{"accounts/acc-13?position=" + last["position"].(string), "orders/o-1?position=" + order["position"].(string)} {
		if code := s.do(t, "GET", "/v1/views/"+v, "", nil); code != 200 {
			t.Fatalf("view %s: %d", v, code)
		}
	}
	var evs httpapi.EventsPage
	if code := s.do(t, "GET", "/v1/aggregates/account/acc-1/events", "", &evs); code != 200 || len(evs.Events) != 5 {
		t.Fatalf("events of acc-1: %d %+v", code, evs)
	}

	t.Run("RootRedirectsToTheConsole", func(t *testing.T) {
		br.do(t, chromedp.Navigate(s.url+"/"))
		br.wait(t, "the console at /console/", `location.pathname === "/console/" && location.hash === "#/aggregates"`)
		br.wait(t, "the account IDs listed", hasText("#ids a", "acc-1"))
	})

	t.Run("SearchWithTheKeyboard", func(t *testing.T) {
		br.wait(t, "aggregate types in the search", `document.querySelector("#search-type").value === "account"`)
		br.keys(t, "/")
		br.wait(t, "/ focuses the search", `document.activeElement.id === "search-input"`)
		br.keys(t, "acc-")
		br.wait(t, "matches of acc-", `document.querySelectorAll("#search-list [role=option]").length === 3`)
		got := eval[[]string](t, br, `[...document.querySelectorAll("#search-list [role=option]")].map((o) => o.dataset.id)`)
		if strings.Join(got, " ") != "acc-1 acc-13 acc-2" {
			t.Fatalf("matches of acc-: %q, want acc-1 acc-13 acc-2 (in ID order, not bob-1)", got)
		}
		// Arrows pick a match; Enter opens it.
		br.keys(t, kb.ArrowDown+kb.ArrowDown+kb.ArrowDown)
		br.wait(t, "the third match highlighted", `document.querySelector("#search-list [aria-selected=true]")?.dataset.id === "acc-2"`)
		br.keys(t, kb.Enter)
		br.wait(t, "acc-2's timeline", `location.hash === "#/aggregates/account/acc-2" && document.querySelectorAll("#events li").length === 1`)
		// Typing a whole ID and Enter opens it, though others start with it.
		br.keys(t, "/")
		br.wait(t, "/ focuses the search again", `document.activeElement.id === "search-input"`)
		br.keys(t, "acc-1"+kb.Enter)
		br.wait(t, "acc-1's timeline", `location.hash === "#/aggregates/account/acc-1"`)
	})

	t.Run("Timeline", func(t *testing.T) {
		br.wait(t, "acc-1's five events", `document.querySelectorAll("#events li").length === 5`)
		type shown struct {
			Version, Type, Schema, Offset string
		}
		got := eval[[]shown](t, br, `[...document.querySelectorAll("#events li")].map((li) => ({
			Version: li.dataset.version,
			Type: li.querySelector(".type").textContent,
			Schema: li.querySelector(".schema").textContent,
			Offset: li.querySelector(".offset").textContent,
		}))`)
		for i, e := range evs.Events {
			want := shown{fmt.Sprint(e.Version), e.Type, fmt.Sprintf("schema v%d", e.SchemaVersion), fmt.Sprintf("partition %d · offset %d", e.Partition, e.Offset)}
			if got[i] != want {
				t.Errorf("event %d shows %+v, want %+v", i+1, got[i], want)
			}
		}
		if types := eval[string](t, br, `[...document.querySelectorAll("#events .type")].map((e) => e.textContent).join(" ")`); types != "AccountOpened MoneyDeposited MoneyWithdrawn MoneyDeposited MoneyWithdrawn" {
			t.Errorf("event types: %s", types)
		}
		br.wait(t, "the state at the latest version", textOf("#version-out")+` === "5 of 5" && `+textOf(`#state [data-field=balance] td`)+` === "1475"`)
		if owner := eval[string](t, br, textOf(`#state [data-field=owner] td`)); owner != "ada" {
			t.Errorf("owner shown: %q", owner)
		}
	})

	t.Run("VersionSlider", func(t *testing.T) {
		br.do(t, chromedp.Focus(chromedp.ID("version")))
		for v := 4; v >= 1; v-- {
			br.keys(t, kb.ArrowLeft)
			br.wait(t, fmt.Sprintf("the balance at version %d", v),
				fmt.Sprintf(`%s === "%d of 5" && %s === "%d" && document.querySelector("#state").dataset.version === "%d"`,
					textOf("#version-out"), v, textOf(`#state [data-field=balance] td`), balances[v-1], v))
			// Later events are marked as the future; the current one
			// as the step shown.
			future := eval[string](t, br, `[...document.querySelectorAll("#events li.future")].map((li) => li.dataset.version).join(",")`)
			var want []string
			for w := v + 1; w <= 5; w++ {
				want = append(want, fmt.Sprint(w))
			}
			if future != strings.Join(want, ",") {
				t.Errorf("at version %d the events marked future are %q, want %q", v, future, strings.Join(want, ","))
			}
		}
		br.wait(t, "the version in the address", `location.hash === "#/aggregates/account/acc-1?v=1"`)
		br.keys(t, kb.End)
		br.wait(t, "End: the latest version", textOf("#version-out")+` === "5 of 5" && `+textOf(`#state [data-field=balance] td`)+` === "1475"`)
		br.keys(t, kb.ArrowLeft+kb.ArrowLeft)
		br.wait(t, "version 3", textOf("#version-out")+` === "3 of 5" && `+textOf(`#state [data-field=balance] td`)+` === "1300"`)

		shot := br.screenshot(t)
		if path := os.Getenv(screenshotEnv); path != "" {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, shot, 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("wrote the console screenshot to %s", path)
		}

		// A long history comes a page of 100 events at a time: the page
		// that holds the slider's version.
		br.do(t, chromedp.Navigate(s.url+"/console/#/aggregates/account/lin-1"))
		br.wait(t, "the last page of lin-1's events", textOf("#version-out")+` === "121 of 121" && document.querySelectorAll("#events li").length === 21 && document.querySelector("#events li").dataset.version === "101"`)
		br.do(t, chromedp.Focus(chromedp.ID("version")))
		br.keys(t, kb.Home)
		br.wait(t, "Home: the first page", textOf("#version-out")+` === "1 of 121" && document.querySelectorAll("#events li").length === 100 && document.querySelector("#events li").dataset.version === "1" && `+textOf(`#state [data-field=balance] td`)+` === "0"`)

		// A deep link opens the same point of the history.
		br.do(t, chromedp.Navigate(s.url+"/console/#/aggregates/account/acc-1?v=2"))
		br.wait(t, "the deep link's version", textOf("#version-out")+` === "2 of 5" && `+textOf(`#state [data-field=balance] td`)+` === "1500"`)
	})

	t.Run("Views", func(t *testing.T) {
		br.do(t, chromedp.Navigate(s.url+"/console/#/views"))
		br.wait(t, "the views listed", hasText("#view-list a", "accounts")+" && "+hasText("#view-list a", "orders"))
		br.do(t, chromedp.Click(chromedp.CSS(`#view-list a[href="#/views/accounts"]`)))
		br.wait(t, "acc-1's row in the accounts view", `document.querySelector('#rows tr[data-key="acc-1"] [data-field=balance]')?.textContent === "1475"`)
		// An index query, from the form.
		br.do(t, chromedp.Navigate(s.url+"/console/#/views/orders"))
		br.wait(t, "the orders view's index", `[...document.querySelectorAll("#q-index option")].some((o) => o.value === "customer_id")`)
		eval[bool](t, br, `(() => { const s = document.querySelector("#q-index"); s.value = "customer_id"; s.dispatchEvent(new Event("change")); return true })()`)
		br.do(t, chromedp.SendKeys(chromedp.ID("q-eq"), "c-42"), chromedp.Click(chromedp.CSS(`#view-query button[type=submit]`)))
		br.wait(t, "the order of customer c-42", `location.hash.includes("index=customer_id") && location.hash.includes("eq=c-42") && document.querySelector('#rows tr[data-key="o-1"] [data-field=customer_id]')?.textContent === "c-42"`)
		// Back goes to the view before the query.
		br.do(t, chromedp.NavigateBack())
		br.wait(t, "back to the unqueried view", `location.hash === "#/views/orders" && !!document.querySelector('#rows tr[data-key="o-1"]')`)
	})

	t.Run("KeyboardShortcuts", func(t *testing.T) {
		eval[bool](t, br, `(document.activeElement?.blur(), true)`)
		br.keys(t, "?")
		br.wait(t, "? opens the keys' help", `document.querySelector("#help-dialog").open`)
		br.keys(t, kb.Escape)
		br.wait(t, "Esc closes it", `!document.querySelector("#help-dialog").open`)
		br.keys(t, "gd")
		br.wait(t, "g d: the DLQ page", `location.hash === "#/dlq" && document.querySelector("h1")?.textContent.startsWith("Dead letters")`)
		br.keys(t, "gp")
		br.wait(t, "g p: the projections page", `location.hash === "#/projections" && document.activeElement === document.querySelector("h1")`)
	})

	t.Run("ProjectionsLagChart", func(t *testing.T) {
		br.wait(t, "a card per projection", `document.querySelectorAll("#projections .projection").length === 4`)
		br.wait(t, "the accounts chart", `!!document.querySelector('.projection[data-name=accounts] svg.chart polyline')`)
		first := eval[int](t, br, `Number(document.querySelector('.projection[data-name=accounts] svg.chart').dataset.samples)`)
		// Polled once a second: two more samples within a few.
		br.wait(t, "the chart updating", fmt.Sprintf(`Number(document.querySelector('.projection[data-name=accounts] svg.chart').dataset.samples) >= %d`, first+2))
		if pts := eval[int](t, br, `document.querySelector('.projection[data-name=accounts] svg.chart polyline').getAttribute("points").trim().split(" ").length`); pts < first+2 {
			t.Errorf("the chart's line has %d points, want a point per sample (%d and more)", pts, first+2)
		}
		if lag := eval[string](t, br, textOf(`.projection[data-name=accounts] [data-fig=lag]`)); lag != "0" {
			t.Errorf("accounts lag shown: %q, want 0 (it applied everything)", lag)
		}
	})

	t.Run("DeadLettersAndParkedEvents", func(t *testing.T) {
		// The processor and the projection work on their own time.
		var dlq httpapi.DLQPage
		eventually(t, 20*time.Second, func() bool {
			dlq = httpapi.DLQPage{}
			return s.do(t, "GET", "/v1/dlq/account", "", &dlq) == 200 && len(dlq.Records) == 1
		}, func() string { return fmt.Sprintf("the dead letter: %+v", dlq) })
		var parked httpapi.ParkedPage
		eventually(t, 20*time.Second, func() bool {
			parked = httpapi.ParkedPage{}
			return s.do(t, "GET", "/v1/projections/unlucky/parked", "", &parked) == 200 && len(parked.Events) == 1
		}, func() string { return fmt.Sprintf("the parked event: %+v", parked) })

		br.do(t, chromedp.Navigate(s.url+"/console/#/dlq"))
		br.wait(t, "the dead letter", `[...document.querySelectorAll('#dlq [data-aggregate=account] tr.dead-letter')].some((tr) =>
			tr.querySelector(".key").textContent === "acc-dlq" && tr.querySelector(".reason").textContent.includes("Deposit data") && tr.textContent.includes("{not json"))`)
		br.wait(t, "no dead letters of orders", `!!document.querySelector('#dlq [data-aggregate=order] .empty')`)
		br.wait(t, "the parked event", `[...document.querySelectorAll('#parked [data-projection=unlucky] tr.parked-event')].some((tr) =>
			tr.textContent.includes("acc-13") && tr.textContent.includes("MoneyDeposited") && tr.querySelector(".reason").textContent.includes("unlucky 13"))`)
		br.wait(t, "nothing parked in accounts", `!!document.querySelector('#parked [data-projection=accounts] .empty')`)
	})
	br.noErrors(t)
}

// TestConsoleAsksForAToken: with tokens configured the console's own files
// load without one, its first API call answers 401, and the console asks
// for a token, says when one is refused, keeps the one that works for the
// tab and sends it from then on.
func TestConsoleAsksForAToken(t *testing.T) {
	br := newBrowser(t)
	const (
		rw = "rw-console-0123456789abcdef"
		ro = "ro-console-0123456789abcdef"
	)
	tokens, err := httpapi.ParseTokens("tokens", strings.NewReader(rw+"\nread-only "+ro+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	s := startNode(t, newBroker(t), nodeOpts{ns: namespace(), dataDir: t.TempDir(), tokens: tokens})
	req, _ := http.NewRequest("POST", s.url+"/v1/commands/account/acc-7", strings.NewReader(`{"type":"OpenAccount","data":{"owner":"ada","initial_balance":7}}`))
	req.Header.Set("Authorization", "Bearer "+rw)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("open acc-7: %s", resp.Status)
	}
	for _, p := range []string{"/console/", "/console/app.js", "/console/style.css"} {
		resp, err := http.Get(s.url + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("GET %s without a token: %s, want 200 (the console's files hold no data)", p, resp.Status)
		}
	}

	br.do(t, chromedp.Navigate(s.url+"/console/"))
	br.wait(t, "the token prompt", `document.querySelector("#token-dialog").open && document.activeElement.id === "token-input"`)
	if why := eval[string](t, br, textOf("#token-why")); !strings.Contains(why, "requires a bearer token") {
		t.Errorf("the prompt says %q", why)
	}
	br.keys(t, "wrong-0123456789abcdef"+kb.Enter)
	br.wait(t, "the wrong token refused", `document.querySelector("#token-dialog").open && `+textOf("#token-why")+`.includes("was refused")`)
	br.keys(t, ro+kb.Enter)
	br.wait(t, "the pages with the read-only token", `!document.querySelector("#token-dialog").open && !!document.querySelector('#ids a[href="#/aggregates/account/acc-7"]')`)
	if kept := eval[string](t, br, `sessionStorage.getItem("strata.token")`); kept != ro {
		t.Errorf("token kept for the tab: %q", kept)
	}
	// A reload uses the kept token: no prompt.
	br.do(t, chromedp.Reload())
	br.wait(t, "the pages after a reload", `!!document.querySelector('#ids a[href="#/aggregates/account/acc-7"]')`)
	if open := eval[bool](t, br, `document.querySelector("#token-dialog").open`); open {
		t.Error("the prompt came back after a reload, with a token kept")
	}
	br.noErrors(t)
}
