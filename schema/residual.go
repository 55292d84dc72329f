package schema

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// maskNode says which parts of a message the mapped columns hold. The
// residual ("extra") is the message without them. It is built from shallow
// copies of only the messages on the paths to held fields, and then
// marshalled; neither a deep copy nor a reflective walk of every field,
// which is what keeps encoding fast.
type maskNode struct {
	col       int // index of the column holding this field, or -1 for an inner node
	children  []maskChild
	firstOnly bool // a list of messages whose first element alone holds mapped fields
}

type maskChild struct {
	fd   protoreflect.FieldDescriptor
	node *maskNode
}

func newMaskNode() *maskNode { return &maskNode{col: -1} }

func (n *maskNode) child(fd protoreflect.FieldDescriptor) *maskNode {
	for _, c := range n.children {
		if c.fd.Number() == fd.Number() {
			return c.node
		}
	}
	c := newMaskNode()
	n.children = append(n.children, maskChild{fd: fd, node: c})
	return c
}

// addPath registers a dotted path of proto field names, e.g.
// "source.workloads[0].name", as held by column col.
func (n *maskNode) addPath(md protoreflect.MessageDescriptor, path string, col int) error {
	parts := strings.Split(path, ".")
	for i, p := range parts {
		first := strings.HasSuffix(p, "[0]")
		p = strings.TrimSuffix(p, "[0]")
		fd := md.Fields().ByName(protoreflect.Name(p))
		if fd == nil {
			return fmt.Errorf("%s has no field %q (path %s)", md.FullName(), p, path)
		}
		child := n.child(fd)
		if i == len(parts)-1 {
			if first || len(child.children) > 0 {
				return fmt.Errorf("path %s: a leaf must be a whole field", path)
			}
			child.col = col
			return nil
		}
		if fd.Message() == nil || fd.IsMap() || (fd.IsList() && !first) {
			return fmt.Errorf("path %s: %s is not a message (or a list indexed [0])", path, p)
		}
		child.firstOnly = first
		n, md = child, fd.Message()
	}
	return nil
}

// plan is a mask compiled for one Go message struct type: the residual is
// built with plain reflect field copies, several times faster than
// protoreflect's generic accessors.
type plan struct {
	typ   reflect.Type // the message struct (not the pointer)
	steps []step
}

type step struct {
	field   int          // index of the Go struct field
	col     int          // leaf: the column holding it; -1 for inner nodes
	wrapper reflect.Type // oneof member: the wrapper struct type (e.g. flow.Layer4_TCP)
	list    bool         // a list whose first element alone holds mapped fields
	child   *plan
}

// compile turns the mask of message type mt into a plan.
func compile(mt protoreflect.MessageType, n *maskNode) (*plan, error) {
	msg := mt.New()
	pt := reflect.TypeOf(msg.Interface())
	p := &plan{typ: pt.Elem()}
	for _, c := range n.children {
		fd := c.fd
		st := step{field: -1, col: c.node.col}
		if od := fd.ContainingOneof(); od != nil && !od.IsSynthetic() {
			if c.node.col >= 0 {
				return nil, fmt.Errorf("%s: a oneof member must be an inner node", fd.FullName())
			}
			// Find the wrapper type by setting the member once.
			msg.Set(fd, msg.NewField(fd))
			sv := reflect.ValueOf(msg.Interface()).Elem()
			for i := 0; i < p.typ.NumField(); i++ {
				if p.typ.Field(i).Tag.Get("protobuf_oneof") == string(od.Name()) {
					st.field, st.wrapper = i, sv.Field(i).Elem().Type().Elem()
				}
			}
			msg.Clear(fd)
		} else {
			for i := 0; i < p.typ.NumField(); i++ {
				if tagNumber(p.typ.Field(i).Tag.Get("protobuf")) == int(fd.Number()) {
					st.field = i
				}
			}
		}
		if st.field < 0 {
			return nil, fmt.Errorf("no Go field for %s", fd.FullName())
		}
		if c.node.col < 0 {
			st.list = fd.IsList()
			var mt protoreflect.MessageType
			if fd.IsList() {
				mt = msg.NewField(fd).List().NewElement().Message().Type()
			} else {
				mt = msg.NewField(fd).Message().Type()
			}
			child, err := compile(mt, c.node)
			if err != nil {
				return nil, err
			}
			st.child = child
		}
		p.steps = append(p.steps, st)
	}
	return p, nil
}

func tagNumber(tag string) int {
	parts := strings.Split(tag, ",")
	if len(parts) < 2 {
		return -1
	}
	n, err := strconv.Atoi(parts[1])
	if err != nil {
		return -1
	}
	return n
}

// residual returns a copy of *src without the fields the columns hold
// (held[col]). Messages on the way to a held field are kept, even when
// empty, so that their presence survives the round trip. src is not
// modified: only the messages on a path are copied, the rest is shared.
func (p *plan) residual(src reflect.Value, held []bool) reflect.Value {
	dst := reflect.New(p.typ)
	d := dst.Elem()
	d.Set(src.Elem())
	for i := range p.steps {
		st := &p.steps[i]
		f := d.Field(st.field)
		switch {
		case st.col >= 0:
			if held[st.col] {
				f.SetZero()
			}
		case st.wrapper != nil:
			if f.IsNil() || f.Elem().Type().Elem() != st.wrapper {
				continue
			}
			inner := f.Elem().Elem().Field(0)
			if inner.IsNil() {
				continue
			}
			w := reflect.New(st.wrapper)
			w.Elem().Field(0).Set(st.child.residual(inner, held))
			f.Set(w)
		case st.list:
			if f.Len() == 0 {
				continue
			}
			l := reflect.MakeSlice(f.Type(), f.Len(), f.Len())
			reflect.Copy(l, f)
			if !l.Index(0).IsNil() {
				l.Index(0).Set(st.child.residual(l.Index(0), held))
			}
			f.Set(l)
		default:
			if !f.IsNil() {
				f.Set(st.child.residual(f, held))
			}
		}
	}
	return dst
}

var marshalOpts = proto.MarshalOptions{}

// KafkaInResidual is how a flow's kafka record is told from its residual
// alone, the only column that holds it: what the analyses' SQL reads to
// compute l7_protocol for files written before that column existed.
//
// Go's protobuf encoder writes a message's known fields by number (unknown
// ones last), and the columns hold every field of Layer7 numbered below
// its kafka record but the other records (http, dns): in the residual of a
// flow with neither HTTP nor DNS, the payload of the l7 field starts with
// kafka's tag exactly when the flow has a kafka record. Flow's fields
// numbered below l7 come before it, once each at most (the repeated ones
// are held whole by their columns).
type KafkaInResidual struct {
	// L7Tag is the tag of Flow.l7 (length-delimited), one byte: l7 is
	// numbered below 16, and so are the fields before it.
	L7Tag byte
	// KafkaTag is the tag of Layer7.kafka (length-delimited).
	KafkaTag []byte
	// FieldsBeforeL7 is how many Flow fields are numbered below l7: the
	// most fields a residual has before it.
	FieldsBeforeL7 int
}

// ResidualKafka returns how a kafka record sits in a flow's residual. It panics
// where the table breaks what the SQL relies on: a programming error that
// any test catches.
func ResidualKafka() KafkaInResidual {
	flow := Flows.newMsg().ProtoReflect().Descriptor()
	l7 := flow.Fields().ByName("l7")
	kafka := l7.Message().Fields().ByName("kafka")
	tag := protowire.AppendTag(nil, l7.Number(), protowire.BytesType)
	if len(tag) != 1 {
		panic("schema: Flow.l7's tag is not one byte")
	}
	held := func(n *maskNode, fd protoreflect.FieldDescriptor) bool {
		for _, c := range n.children {
			if c.fd.Number() == fd.Number() {
				return c.node.col >= 0
			}
		}
		return false
	}
	before := 0
	for i := 0; i < flow.Fields().Len(); i++ {
		fd := flow.Fields().Get(i)
		if fd.Number() >= l7.Number() {
			continue
		}
		if fd.IsList() && !held(Flows.mask, fd) {
			panic("schema: repeated field " + string(fd.Name()) + " before Flow.l7 is not held by a column")
		}
		before++
	}
	var l7Node *maskNode
	for _, c := range Flows.mask.children {
		if c.fd.Number() == l7.Number() {
			l7Node = c.node
		}
	}
	for i := 0; i < l7.Message().Fields().Len(); i++ {
		fd := l7.Message().Fields().Get(i)
		if fd.Number() < kafka.Number() && fd.ContainingOneof() != kafka.ContainingOneof() && (l7Node == nil || !held(l7Node, fd)) {
			panic("schema: Layer7." + string(fd.Name()) + " is not held by a column: it may come before kafka in a residual")
		}
	}
	return KafkaInResidual{
		L7Tag:          tag[0],
		KafkaTag:       protowire.AppendTag(nil, kafka.Number(), protowire.BytesType),
		FieldsBeforeL7: before,
	}
}
