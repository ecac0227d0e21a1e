package soak

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"

	"github.com/strata-es/strata/aggregates/account"
	"github.com/strata-es/strata/aggregates/order"
)

// command is one command as a soak client sends it.
type command struct {
	ID       string
	Agg      string // account.Name or order.Name
	AggID    string
	Type     string
	Data     json.RawMessage
	Expected *uint64 // expected_version, if sent
}

func (c *command) key() string { return c.Agg + "/" + c.AggID }

// Customers own the accounts (as their holder) and place the orders, so the
// customers view mixes both.
const customers = 10

// skus and their usual prices; a command sometimes offers another price,
// which the order refuses for a SKU it has.
var (
	skus   = []string{"A", "B", "C", "D", "E", "F", "G", "H"}
	prices = map[string]int64{"A": 500, "B": 1250, "C": 99, "D": 2000, "E": 10, "F": 333, "G": 4200, "H": 750}
)

// world is what the clients together learned from the answers they got:
// which accounts are open, the newest version seen of each aggregate, the
// orders created lately. It steers the workload towards commands that
// mostly make sense; it is not the model the checks use (that is the
// events topic).
type world struct {
	mu       sync.Mutex
	accounts []string
	opened   map[string]bool
	version  map[string]uint64 // by command.key()
	orders   []string          // recently created orders, newest last
	nextOrd  int
}

func newWorld(accounts int) *world {
	w := &world{opened: map[string]bool{}, version: map[string]uint64{}}
	for i := range accounts {
		w.accounts = append(w.accounts, fmt.Sprintf("acc-%d", i))
	}
	return w
}

// recentOrders is how many of the newest orders commands go to.
const recentOrders = 60

// next makes a client's next command. id is its command ID.
func (w *world) next(rng *rand.Rand, id string) *command {
	w.mu.Lock()
	defer w.mu.Unlock()
	c := &command{ID: id}
	if rng.IntN(100) < 55 {
		w.accountCommand(rng, c)
	} else {
		w.orderCommand(rng, c)
	}
	// Expected versions: mostly none; sometimes the newest version this
	// client knows (stale when another client got there first), sometimes
	// one that is surely stale.
	known, seen := w.version[c.key()]
	switch r := rng.IntN(100); {
	case r < 15 && (seen || c.Type == "OpenAccount" || c.Type == "CreateOrder"):
		c.Expected = &known
	case r < 20 && known > 0:
		v := known - 1
		c.Expected = &v
	}
	return c
}

func (w *world) accountCommand(rng *rand.Rand, c *command) {
	c.Agg = account.Name
	i := rng.IntN(len(w.accounts))
	c.AggID = w.accounts[i]
	owner := fmt.Sprintf("cust-%d", i%customers)
	r := rng.IntN(100)
	switch {
	case !w.opened[c.AggID] && r < 90 || r < 3:
		// Opening an open account is refused: a rejection to check.
		c.Type = "OpenAccount"
		c.Data = jsonOf(map[string]any{"owner": owner, "initial_balance": rng.IntN(5) * 100})
	case r < 50:
		c.Type = "Deposit"
		c.Data = jsonOf(map[string]any{"amount": 1 + rng.IntN(500)})
	default:
		// Withdrawals average more than deposits: many must be refused
		// for insufficient funds.
		c.Type = "Withdraw"
		c.Data = jsonOf(map[string]any{"amount": 1 + rng.IntN(800)})
	}
}

func (w *world) orderCommand(rng *rand.Rand, c *command) {
	c.Agg = order.Name
	r := rng.IntN(100)
	if len(w.orders) == 0 || r < 10 {
		w.nextOrd++
		c.AggID = fmt.Sprintf("o-%d", w.nextOrd)
		c.Type = "CreateOrder"
		var items []map[string]any
		for _, k := range rng.Perm(len(skus))[:1+rng.IntN(3)] {
			items = append(items, map[string]any{"sku": skus[k], "qty": 1 + rng.IntN(5), "unit_price": prices[skus[k]]})
		}
		c.Data = jsonOf(map[string]any{"customer_id": fmt.Sprintf("cust-%d", rng.IntN(customers)), "items": items})
		return
	}
	c.AggID = w.orders[rng.IntN(len(w.orders))]
	switch r = rng.IntN(100); {
	case r < 35:
		c.Type = "AddItem"
		sku := skus[rng.IntN(len(skus))]
		price := prices[sku]
		if rng.IntN(10) == 0 {
			price++ // refused when the order has the SKU at its usual price
		}
		c.Data = jsonOf(map[string]any{"sku": sku, "qty": 1 + rng.IntN(5), "unit_price": price})
	case r < 50:
		c.Type = "RemoveItem"
		c.Data = jsonOf(map[string]any{"sku": skus[rng.IntN(len(skus))]})
	case r < 72:
		c.Type = "ConfirmOrder"
		c.Data = json.RawMessage(`{}`)
	case r < 90:
		c.Type = "ShipOrder"
		c.Data = jsonOf(map[string]any{"carrier": []string{"DHL", "UPS", "PostNL"}[rng.IntN(3)], "tracking": fmt.Sprintf("T%d", rng.IntN(1e6))})
	default:
		c.Type = "CancelOrder"
		c.Data = jsonOf(map[string]any{"reason": "changed my mind"})
	}
}

// learn updates the world with an answer to c.
func (w *world) learn(c *command, a *answer) {
	w.mu.Lock()
	defer w.mu.Unlock()
	k := c.key()
	if a.Version > w.version[k] {
		w.version[k] = a.Version
	}
	switch {
	case c.Type == "OpenAccount" && (a.Status == statusAccepted || a.Status == statusRejected && strings.Contains(a.Error, "already exists")):
		w.opened[c.AggID] = true
	case c.Type == "CreateOrder" && a.Status == statusAccepted:
		w.orders = append(w.orders, c.AggID)
		if len(w.orders) > recentOrders {
			w.orders = w.orders[1:]
		}
	}
}

func jsonOf(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // maps of strings and numbers always marshal
	}
	return b
}
