package shop

import (
	"errors"
	"fmt"
	"sort"
	"sync"
)

// Customer is a person who orders from the shop.
type Customer struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Email string `json:"email"`
	Phone string `json:"phone"`
}

// Order is one order. Amounts are integer cents.
type Order struct {
	ID         string `json:"id"`
	CustomerID string `json:"customer_id"`
	Item       string `json:"item"`
	Amount     int64  `json:"amount"`   // cents
	Refunded   int64  `json:"refunded"` // cents refunded so far
	Status     string `json:"status"`   // placed, shipped, delivered, refunded
}

// Refund is money given back on an order.
type Refund struct {
	ID      string `json:"id"`
	OrderID string `json:"order_id"`
	Amount  int64  `json:"amount"` // cents
	Reason  string `json:"reason"`
}

// Email is a message the shop was asked to send. The example sends
// nothing: messages stay in the outbox.
type Email struct {
	To      string `json:"to"`
	Subject string `json:"subject"`
	Body    string `json:"body"`
}

// errNotFound marks lookups of ids the shop does not know.
var errNotFound = errors.New("not found")

// store is the shop's in-memory data, safe for concurrent use.
type store struct {
	mu        sync.Mutex
	customers map[string]Customer
	orders    map[string]*Order
	refunds   []Refund
	outbox    []Email
}

// newStore returns the shop's sample data: three customers and their orders.
func newStore() *store {
	s := &store{customers: map[string]Customer{}, orders: map[string]*Order{}}
	for _, c := range []Customer{
		{ID: "c-1001", Name: "Ada Lovelace", Email: "ada@example.com", Phone: "+44 20 7946 0018"},
		{ID: "c-1002", Name: "Grace Hopper", Email: "grace@example.com", Phone: "+1 202 555 0143"},
		{ID: "c-1003", Name: "Alan Turing", Email: "alan@example.com", Phone: "+44 161 496 0734"},
	} {
		s.customers[c.ID] = c
	}
	for _, o := range []Order{
		{ID: "12345", CustomerID: "c-1001", Item: "mechanical keyboard", Amount: 12990, Status: "delivered"},
		{ID: "12346", CustomerID: "c-1001", Item: "desk lamp", Amount: 4550, Status: "shipped"},
		{ID: "12347", CustomerID: "c-1002", Item: "noise-cancelling headphones", Amount: 29900, Status: "delivered"},
		{ID: "12348", CustomerID: "c-1003", Item: "chess set", Amount: 8900, Status: "placed"},
	} {
		s.orders[o.ID] = &o
	}
	return s
}

func (s *store) order(id string) (Order, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.orders[id]
	if !ok {
		return Order{}, fmt.Errorf("order %s: %w", id, errNotFound)
	}
	return *o, nil
}

func (s *store) customer(id string) (Customer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.customers[id]
	if !ok {
		return Customer{}, fmt.Errorf("customer %s: %w", id, errNotFound)
	}
	return c, nil
}

// ordersOf returns a customer's orders by id.
func (s *store) ordersOf(customerID string) ([]Order, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.customers[customerID]; !ok {
		return nil, fmt.Errorf("customer %s: %w", customerID, errNotFound)
	}
	out := []Order{}
	for _, o := range s.orders {
		if o.CustomerID == customerID {
			out = append(out, *o)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// refund gives back amount cents on an order, never more than was paid.
func (s *store) refund(orderID string, amount int64, reason string) (Refund, Order, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.orders[orderID]
	if !ok {
		return Refund{}, Order{}, fmt.Errorf("order %s: %w", orderID, errNotFound)
	}
	if amount <= 0 {
		return Refund{}, Order{}, fmt.Errorf("refund amount must be positive, got %d", amount)
	}
	if left := o.Amount - o.Refunded; amount > left {
		return Refund{}, Order{}, fmt.Errorf("order %s has %s left to refund, asked for %s", orderID, Money(left), Money(amount))
	}
	o.Refunded += amount
	if o.Refunded == o.Amount {
		o.Status = "refunded"
	}
	r := Refund{ID: fmt.Sprintf("r-%d", len(s.refunds)+1), OrderID: orderID, Amount: amount, Reason: reason}
	s.refunds = append(s.refunds, r)
	return r, *o, nil
}

func (s *store) deleteOrder(id string) (Order, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.orders[id]
	if !ok {
		return Order{}, fmt.Errorf("order %s: %w", id, errNotFound)
	}
	delete(s.orders, id)
	return *o, nil
}

func (s *store) send(e Email) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.outbox = append(s.outbox, e)
	return len(s.outbox)
}

// Money formats cents as a decimal amount: 1500 → "15.00".
func Money(cents int64) string {
	sign := ""
	if cents < 0 {
		sign, cents = "-", -cents
	}
	return fmt.Sprintf("%s%d.%02d", sign, cents/100, cents%100)
}
