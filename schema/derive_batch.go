package schema

import (
	"fmt"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// DeriveColumns are the flow columns Derive reads; a reader that derives
// from a file reads only these.
var DeriveColumns = []string{
	"time", "uuid", "node_name", "verdict", "drop_reason_desc", "drop_reason", "type", "traffic_direction",
	"is_reply", "reply", "ip_source", "ip_destination", "l4_protocol", "source_port", "destination_port", "icmp_type",
	"tcp_syn", "tcp_ack", "tcp_rst",
	"source_namespace", "source_pod_name", "source_workload", "source_app", "source_service_name", "source_endpoint",
	"destination_namespace", "destination_pod_name", "destination_workload", "destination_app", "destination_service_name", "destination_endpoint",
	"l7_type", "l7_latency_ns", "http_code", "http_method", "http_url", "http_headers", "l7_protocol", "dns_rcode",
}

// flowBatch binds the columns of a batch of flow rows that Derive reads.
// Strings are "" where NULL: flows store no empty string (see strCol).
type flowBatch struct {
	n                                  int
	time                               func(int) int64
	uuid                               func(int) ([16]byte, bool)
	node, verdict, dropDesc, typ, dir  func(int) string
	ipSrc, ipDst, l4, l7Type, l7Proto  func(int) string
	reqID, method, url                 func(int) string
	srcNs, srcPod, srcWorkload, srcApp func(int) string
	srcSvc, srcEp                      func(int) string
	dstNs, dstPod, dstWorkload, dstApp func(int) string
	dstSvc, dstEp                      func(int) string
	dropReason                         func(int) (uint32, bool)
	srcPort, dstPort, icmpType         func(int) (uint32, bool)
	httpCode, dnsRcode                 func(int) (uint32, bool)
	latency                            func(int) (uint64, bool)
	isReply, reply, syn, ack, rst      func(int) Tri
}

func bindFlows(rec arrow.RecordBatch) (*flowBatch, error) {
	b := &flowBatch{n: int(rec.NumRows())}
	var err error
	col := func(name string) arrow.Array {
		if idx := rec.Schema().FieldIndices(name); len(idx) > 0 {
			return rec.Column(idx[0])
		}
		return nil
	}
	str := func(name string) func(int) string {
		a := col(name)
		if a == nil || a.NullN() == a.Len() {
			return func(int) string { return "" }
		}
		get, ok := stringValues(a)
		if !ok {
			err = fmt.Errorf("column %s has type %s, want strings", name, a.DataType())
			return func(int) string { return "" }
		}
		nulls := nullMaskOf(a)
		if nulls.bits == nil {
			return get
		}
		return func(i int) string {
			if !nulls.valid(i) {
				return ""
			}
			return get(i)
		}
	}
	u32 := func(name string) func(int) (uint32, bool) {
		a := col(name)
		if a == nil || a.NullN() == a.Len() {
			return func(int) (uint32, bool) { return 0, false }
		}
		get, ok := fixedValues[uint32, *array.Uint32](a)
		if !ok {
			err = fmt.Errorf("column %s has type %s, want uint32", name, a.DataType())
			return func(int) (uint32, bool) { return 0, false }
		}
		nulls := nullMaskOf(a)
		return func(i int) (uint32, bool) { return get(i), nulls.valid(i) }
	}
	tri := func(name string) func(int) Tri {
		a := col(name)
		if a == nil || a.NullN() == a.Len() {
			return func(int) Tri { return Null }
		}
		bs, ok := a.(*array.Boolean)
		if !ok {
			err = fmt.Errorf("column %s has type %s, want bool", name, a.DataType())
			return func(int) Tri { return Null }
		}
		nulls := nullMaskOf(a)
		return func(i int) Tri {
			if !nulls.valid(i) {
				return Null
			}
			return TriOf(bs.Value(i))
		}
	}
	t := col("time")
	if t == nil {
		return nil, fmt.Errorf("no time column")
	}
	ts, ok := t.(*array.Timestamp)
	if !ok {
		return nil, fmt.Errorf("column time has type %s, want timestamp", t.DataType())
	}
	tv := ts.TimestampValues()
	b.time = func(i int) int64 { return int64(tv[i]) }
	b.uuid = func(int) ([16]byte, bool) { return [16]byte{}, false }
	if u := col("uuid"); u != nil && u.NullN() < u.Len() {
		var fb *array.FixedSizeBinary
		switch u := u.(type) {
		case array.ExtensionArray:
			fb, _ = u.Storage().(*array.FixedSizeBinary)
		case *array.FixedSizeBinary:
			fb = u
		}
		if fb == nil {
			return nil, fmt.Errorf("column uuid has type %s, want uuid", u.DataType())
		}
		nulls := nullMaskOf(u)
		b.uuid = func(i int) ([16]byte, bool) {
			if !nulls.valid(i) {
				return [16]byte{}, false
			}
			return [16]byte(fb.Value(i)), true
		}
	}
	b.latency = func(int) (uint64, bool) { return 0, false }
	if a := col("l7_latency_ns"); a != nil && a.NullN() < a.Len() {
		get, ok := fixedValues[uint64, *array.Uint64](a)
		if !ok {
			return nil, fmt.Errorf("column l7_latency_ns has type %s, want uint64", a.DataType())
		}
		nulls := nullMaskOf(a)
		b.latency = func(i int) (uint64, bool) { return get(i), nulls.valid(i) }
	}
	b.node, b.verdict, b.dropDesc, b.typ, b.dir = str("node_name"), str("verdict"), str("drop_reason_desc"), str("type"), str("traffic_direction")
	b.ipSrc, b.ipDst, b.l4, b.l7Type, b.l7Proto = str("ip_source"), str("ip_destination"), str("l4_protocol"), str("l7_type"), str("l7_protocol")
	b.method, b.url = str("http_method"), str("http_url")
	reqID, herr := headerValues(col("http_headers"), HeaderRequestID)
	if herr != nil {
		return nil, herr
	}
	b.reqID = reqID
	b.srcNs, b.srcPod, b.srcWorkload, b.srcApp = str("source_namespace"), str("source_pod_name"), str("source_workload"), str("source_app")
	b.srcSvc, b.srcEp = str("source_service_name"), str("source_endpoint")
	b.dstNs, b.dstPod, b.dstWorkload, b.dstApp = str("destination_namespace"), str("destination_pod_name"), str("destination_workload"), str("destination_app")
	b.dstSvc, b.dstEp = str("destination_service_name"), str("destination_endpoint")
	b.dropReason = u32("drop_reason")
	b.srcPort, b.dstPort, b.icmpType = u32("source_port"), u32("destination_port"), u32("icmp_type")
	b.httpCode, b.dnsRcode = u32("http_code"), u32("dns_rcode")
	b.isReply, b.reply, b.syn, b.ack, b.rst = tri("is_reply"), tri("reply"), tri("tcp_syn"), tri("tcp_ack"), tri("tcp_rst")
	if err != nil {
		return nil, err
	}
	return b, nil
}

// headerValues binds a header's value in a column of http_headers: the
// first whose name matches as httpHeader matches it, "" where there is
// none. It reads the list's keys and values in place: a batch's flows are
// mostly not HTTP, and an HTTP flow has a few headers.
func headerValues(a arrow.Array, name string) (func(int) string, error) {
	if a == nil || a.NullN() == a.Len() {
		return func(int) string { return "" }, nil
	}
	l, ok := a.(*array.List)
	var st *array.Struct
	if ok {
		st, ok = l.ListValues().(*array.Struct)
	}
	var keys, vals func(int) string
	if ok = ok && st.NumField() == 2; ok {
		var ok1, ok2 bool
		keys, ok1 = stringValues(st.Field(0))
		vals, ok2 = stringValues(st.Field(1))
		ok = ok1 && ok2
	}
	if !ok {
		return nil, fmt.Errorf("column http_headers has type %s, want a list of {key, value}", a.DataType())
	}
	return func(i int) string {
		start, end := l.ValueOffsets(i)
		for j := int(start); j < int(end); j++ {
			if strings.EqualFold(keys(j), name) {
				return vals(j)
			}
		}
		return ""
	}, nil
}

// edge is a flow in its connection's direction, as analyze/sql/views/
// edges.sql turns it (that view is this function's twin over flows; the
// analyses' tests hold the two equal).
type edge struct {
	swap                 Tri // the edges view's is_reply
	src, srcNs, srcPod   string
	srcIP                string
	srcPort              uint32
	hasSrcPort           bool
	dst, dstNs, dstPod   string
	dstIP                string
	dstPort              uint32
	hasDstPort           bool
	dstSvc               string
	synOnly, synAck, rst bool
	// srcNamed and dstNamed: the endpoint is named by its workload, the
	// name the views give its pod whatever its other flows say (summary.go)
	srcNamed, dstNamed bool
}

func (b *flowBatch) edge(i int) edge {
	syn, ack := b.syn(i), b.ack(i)
	var swap Tri
	switch {
	case syn == True && ack != True:
		swap = False
	case syn == True && ack == True:
		swap = True
	case b.isReply(i) != Null:
		swap = b.isReply(i)
	case b.reply(i) == True:
		swap = True
	case b.l4(i) == "ICMPv4" || b.l4(i) == "ICMPv6":
		if t, ok := b.icmpType(i); ok {
			swap = TriOf(t == 0 || t == 129)
		}
	default:
		sp, okS := b.srcPort(i)
		dp, okD := b.dstPort(i)
		swap = TriOf(okS && okD && sp < 32768 && dp >= 32768)
	}
	e := edge{swap: swap, synOnly: syn == True && ack != True, synAck: syn == True && ack == True, rst: b.rst(i) == True}
	sp, okS := b.srcPort(i)
	dp, okD := b.dstPort(i)
	if swap == True {
		e.src, e.srcNs, e.srcPod, e.srcIP, e.srcPort, e.hasSrcPort = b.dstEp(i), b.dstNs(i), b.dstPod(i), b.ipDst(i), dp, okD
		e.dst, e.dstNs, e.dstPod, e.dstIP, e.dstPort, e.hasDstPort = b.srcEp(i), b.srcNs(i), b.srcPod(i), b.ipSrc(i), sp, okS
		e.dstSvc = b.srcSvc(i)
		e.srcNamed, e.dstNamed = b.dstWorkload(i) != "", b.srcWorkload(i) != ""
	} else {
		e.src, e.srcNs, e.srcPod, e.srcIP, e.srcPort, e.hasSrcPort = b.srcEp(i), b.srcNs(i), b.srcPod(i), b.ipSrc(i), sp, okS
		e.dst, e.dstNs, e.dstPod, e.dstIP, e.dstPort, e.hasDstPort = b.dstEp(i), b.dstNs(i), b.dstPod(i), b.ipDst(i), dp, okD
		e.dstSvc = b.dstSvc(i)
		e.srcNamed, e.dstNamed = b.srcWorkload(i) != "", b.dstWorkload(i) != ""
	}
	return e
}
