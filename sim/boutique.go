package sim

import "math"

// The request handlers of Online Boutique's services: who calls whom, in
// which order, for each page and RPC (microservices-demo's src/*).

// numProducts is the size of the product catalog; the home page converts
// the price of each.
const numProducts = 9

var productIDs = []string{"OLJCESPC7Z", "66VCHSJNUP", "1YMWWN1N4O", "L9ECAV7KIM", "2ZYFJ3GM2N", "0PUK6V6EV0", "LS4PSXUNUM", "9SIQT8TOJO", "6E92ZMYYFZ"}

// serviceTime draws a processing time around median (ms) with a long tail.
func (g *generator) serviceTime(medianMs, sigma float64) int64 {
	v := medianMs * math.Exp(sigma*g.rng.NormFloat64())
	if v > medianMs*50 {
		v = medianMs * 50
	}
	return roundUs(int64(v * 1e6))
}

// roundUs is the simulator's latency resolution: one microsecond.
func roundUs(ns int64) int64 {
	if ns < 1000 {
		return 1000
	}
	return ns / 1000 * 1000
}

// transient is the baseline failure: a rare 503 from any gRPC server.
func (g *generator) transient() bool { return g.rng.Float64() < 0.0005 }

// frontend handles one page request from the loadgenerator.
func (g *generator) frontend(pod *Pod, method, path string, t int64) (int64, uint32) {
	t += g.serviceTime(0.4, 0.3)
	if g.rng.Float64() < 0.0002 {
		return t + int64(30e9), 0 // hangs: the client gives up, no response
	}
	var code uint32
	switch {
	case method == "GET" && path == "/":
		t, _ = g.rpc(pod, "currencyservice", "GetSupportedCurrencies", t)
		t, code = g.rpc(pod, "productcatalogservice", "ListProducts", t)
		if code != 200 {
			return t, 500
		}
		t, _ = g.rpc(pod, "cartservice", "GetCart", t)
		for i := 0; i < numProducts; i++ {
			t, _ = g.rpc(pod, "currencyservice", "Convert", t)
		}
		t, _ = g.rpc(pod, "adservice", "GetAds", t)
	case method == "POST" && path == "/setCurrency":
		return t + g.serviceTime(0.2, 0.2), 302
	case method == "GET" && path == "/cart":
		t, _ = g.rpc(pod, "currencyservice", "GetSupportedCurrencies", t)
		t, code = g.rpc(pod, "cartservice", "GetCart", t)
		if code != 200 {
			return t, 500
		}
		if t, code = g.recommendations(pod, t); code != 200 {
			return t, 500 // the cart page fails without recommendations
		}
		t, _ = g.rpc(pod, "shippingservice", "GetQuote", t)
		items := 1 + g.rng.IntN(3)
		for i := 0; i < items; i++ {
			t, _ = g.rpc(pod, "productcatalogservice", "GetProduct", t)
			t, _ = g.rpc(pod, "currencyservice", "Convert", t)
		}
		t, _ = g.rpc(pod, "currencyservice", "Convert", t)
	case method == "GET": // /product/{id}
		t, _ = g.rpc(pod, "currencyservice", "GetSupportedCurrencies", t)
		t, code = g.rpc(pod, "productcatalogservice", "GetProduct", t)
		if code != 200 {
			return t, 500
		}
		t, _ = g.rpc(pod, "cartservice", "GetCart", t)
		t, _ = g.rpc(pod, "currencyservice", "Convert", t)
		t, _ = g.recommendations(pod, t) // failures only log a warning
		t, _ = g.rpc(pod, "adservice", "GetAds", t)
	case method == "POST" && path == "/cart":
		t, code = g.rpc(pod, "productcatalogservice", "GetProduct", t)
		if code != 200 {
			return t, 500
		}
		t, code = g.rpc(pod, "cartservice", "AddItem", t)
		if code != 200 {
			return t, 500
		}
		return t + g.serviceTime(0.2, 0.2), 302
	case method == "POST" && path == "/cart/checkout":
		t, _ = g.rpc(pod, "currencyservice", "GetSupportedCurrencies", t)
		if t, code = g.rpc(pod, "checkoutservice", "PlaceOrder", t); code != 200 {
			return t, 500
		}
		t, _ = g.recommendations(pod, t)
	}
	return t + g.serviceTime(1.5, 0.4), 200
}

// recommendations is the frontend's getRecommendations: the list, then the
// first four products.
func (g *generator) recommendations(pod *Pod, t int64) (int64, uint32) {
	t, code := g.rpc(pod, "recommendationservice", "ListRecommendations", t)
	if code != 200 {
		return t, code
	}
	for i := 0; i < 4; i++ {
		t, _ = g.rpc(pod, "productcatalogservice", "GetProduct", t)
	}
	return t, 200
}

// serve runs gRPC method m on pod at time t and returns when it answers.
func (g *generator) serve(pod *Pod, m string, t int64) (int64, uint32) {
	if g.transient() {
		return t + g.serviceTime(0.3, 0.3), 503
	}
	incident := g.scen.incident(t - g.start)
	var code uint32 = 200
	switch pod.Service.Name {
	case "productcatalogservice":
		t += g.serviceTime(map[string]float64{"ListProducts": 1.6, "GetProduct": 0.7, "SearchProducts": 1.2}[m], 0.35)
	case "currencyservice":
		t += g.serviceTime(map[string]float64{"Convert": 0.5, "GetSupportedCurrencies": 0.4}[m], 0.3)
	case "cartservice":
		own := float64(g.serviceTime(map[string]float64{"GetCart": 1.8, "AddItem": 2.6, "EmptyCart": 2.0}[m], 0.3))
		if incident && g.scen.CartLatencyFactor > 0 {
			own *= g.scen.CartLatencyFactor
		}
		t = g.redis(pod, t) + roundUs(int64(own))
	case "recommendationservice":
		t += g.serviceTime(2.2, 0.3)
		if t, code = g.rpc(pod, "productcatalogservice", "ListProducts", t); code != 200 {
			return t + g.serviceTime(0.3, 0.2), 500
		}
	case "adservice":
		t += g.serviceTime(1.2, 0.4)
	case "shippingservice":
		t += g.serviceTime(0.6, 0.3)
	case "paymentservice":
		t += g.serviceTime(2.0, 0.3)
		t = g.egressCall(pod, g.ext.payments, true, g.serviceTime(45, 0.3), t)
		if incident && g.rng.Float64() < g.scen.PaymentErrorRate {
			return t, 503
		}
	case "emailservice":
		t += g.serviceTime(3.5, 0.4)
		t = g.egressCall(pod, g.ext.mail, false, g.serviceTime(30, 0.4), t)
	case "checkoutservice":
		return g.placeOrder(pod, t)
	}
	return t, code
}

// placeOrder is checkoutservice's PlaceOrder: the cart, each item's product
// and price, the shipping quote and its price, payment and shipping must all
// succeed; emptying the cart and the e-mail are best effort.
func (g *generator) placeOrder(pod *Pod, t int64) (int64, uint32) {
	type call struct{ service, method string }
	must := []call{{"cartservice", "GetCart"}}
	for i := 1 + g.rng.IntN(3); i > 0; i-- {
		must = append(must, call{"productcatalogservice", "GetProduct"}, call{"currencyservice", "Convert"})
	}
	must = append(must, call{"shippingservice", "GetQuote"}, call{"currencyservice", "Convert"},
		call{"paymentservice", "Charge"}, call{"shippingservice", "ShipOrder"})
	var code uint32
	t += g.serviceTime(0.8, 0.3)
	for _, c := range must {
		if t, code = g.rpc(pod, c.service, c.method, t); code != 200 {
			return t, 500
		}
	}
	t, _ = g.rpc(pod, "cartservice", "EmptyCart", t)
	t, _ = g.rpc(pod, "emailservice", "SendOrderConfirmation", t)
	return t + g.serviceTime(0.5, 0.3), 200
}

// loadgenTask runs one task of the loadgenerator's locustfile.
func (g *generator) loadgenTask(t int64) {
	lg := g.topo.Services["loadgenerator"].Pods[0]
	page := func(method, path string) {
		t, _ = g.httpCall(lg, method, path, t)
		t += int64(g.rng.IntN(5)+1) * 1e6 // think time between requests of a task
	}
	product := productIDs[g.rng.IntN(len(productIDs))]
	switch pickWeighted(g.rng.IntN(taskWeightSum)) {
	case "index":
		page("GET", "/")
	case "setCurrency":
		page("POST", "/setCurrency")
	case "browseProduct":
		page("GET", "/product/"+product)
	case "addToCart":
		page("GET", "/product/"+product)
		page("POST", "/cart")
	case "viewCart":
		page("GET", "/cart")
	case "checkout":
		page("GET", "/product/"+product)
		page("POST", "/cart")
		page("POST", "/cart/checkout")
	}
}

// taskWeights is the loadgenerator's task mix (locustfile.py).
var taskWeights = []struct {
	name   string
	weight int
}{{"index", 1}, {"setCurrency", 2}, {"browseProduct", 10}, {"addToCart", 2}, {"viewCart", 3}, {"checkout", 1}}

var taskWeightSum = func() int {
	s := 0
	for _, w := range taskWeights {
		s += w.weight
	}
	return s
}()

func pickWeighted(n int) string {
	for _, w := range taskWeights {
		if n < w.weight {
			return w.name
		}
		n -= w.weight
	}
	return taskWeights[0].name
}
