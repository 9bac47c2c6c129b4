// Test-bed addition to FerretDB v1.24.2 (mender-compose-upgrade, not upstream; Apache-2.0 like
// the code it joins). Copied into internal/handler/ by scripts/testbed before the build, together
// with fcv.patch, which wires it in.
//
// The stand-in for mongod keeps a featureCompatibilityVersion the way mongod keeps it: as the
// document {_id: "featureCompatibilityVersion", version: "X.Y"} in admin.system.version, on the data
// volume. A fresh data directory starts at the binary's own major; getParameter reports the stored
// value; setFeatureCompatibilityVersion accepts what a mongod of that major accepts and refuses the
// rest with mongod's codes and words; and a binary refuses to start on data whose FCV it does not
// accept, logging mongod's fatal line "Wrong mongod version" and exiting with mongod's code 62.
//
// The wording follows mongod's sources and logs of each major (feature_compatibility_version.cpp,
// feature_compatibility_version_parser.cpp, set_feature_compatibility_version_command.cpp,
// mongod_main.cpp). Data without the document (volumes of the stand-in before it kept one) is
// taken to be at the binary's major and gets the document.

package handler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/FerretDB/wire"

	"github.com/FerretDB/FerretDB/build/version"
	"github.com/FerretDB/FerretDB/internal/backends"
	"github.com/FerretDB/FerretDB/internal/clientconn/conninfo"
	"github.com/FerretDB/FerretDB/internal/handler/common"
	"github.com/FerretDB/FerretDB/internal/handler/handlererrors"
	"github.com/FerretDB/FerretDB/internal/types"
	"github.com/FerretDB/FerretDB/internal/util/iterator"
	"github.com/FerretDB/FerretDB/internal/util/lazyerrors"
	"github.com/FerretDB/FerretDB/internal/util/must"
)

const (
	fcvID         = "featureCompatibilityVersion"
	fcvDB         = "admin"
	fcvCollection = "system.version"

	// mongod's ExitCode::needDowngrade (EXIT_NEED_DOWNGRADE), used for "Wrong mongod version".
	fcvExitCode = 62
)

// fcvRules are the FCV values a mongod binary of one major knows (last LTS, last continuous,
// latest) and the documentation major its messages link to.
type fcvRules struct {
	major          string // "4.4" … "8.0"
	lastLTS        string
	lastContinuous string // "" where the binary has none
	docs           string // the major in the release-notes links of its messages
}

var fcvByMajor = map[string]fcvRules{
	"4.4": {major: "4.4", lastLTS: "4.2", docs: "4.4"},
	"5.0": {major: "5.0", lastLTS: "4.4", lastContinuous: "4.9", docs: "4.4"},
	"6.0": {major: "6.0", lastLTS: "5.0", lastContinuous: "5.3", docs: "5.0"},
	"7.0": {major: "7.0", lastLTS: "6.0", lastContinuous: "6.3", docs: "6.0"},
	"8.0": {major: "8.0", lastLTS: "7.0", lastContinuous: "7.3", docs: "7.0"},
}

// fcvState is the handler's in-memory copy of the stored FCV, as mongod caches it.
type fcvState struct {
	mu      sync.Mutex
	rules   fcvRules
	version string
}

var fcv fcvState

func (r fcvRules) compatibilityLink() string {
	return fmt.Sprintf("https://docs.mongodb.com/master/release-notes/%s-compatibility/#feature-compatibility", r.docs)
}

func (r fcvRules) knows(v string) bool {
	return v == r.major || v == r.lastLTS || (r.lastContinuous != "" && v == r.lastContinuous)
}

// parseError is mongod's message for an FCV value this binary does not know (location 4926900
// from 5.0 on), in the wording of each major's parser.
func (r fcvRules) parseError(v string) string {
	switch r.major {
	case "5.0":
		return fmt.Sprintf("Invalid value for featureCompatibilityVersiondocument in admin.system.version, found %s, expected '%s' or '%s' or '%s. See %s.",
			v, r.lastLTS, r.lastContinuous, r.major, r.compatibilityLink())
	case "6.0":
		return fmt.Sprintf("Invalid feature compatibility version value, expected '%s' or '%s' or '%s. See %s.",
			r.lastLTS, r.lastContinuous, r.major, r.compatibilityLink())
	default:
		return fmt.Sprintf("Invalid feature compatibility version value '%s'; expected '%s' or '%s' or '%s'. See %s.",
			v, r.lastLTS, r.lastContinuous, r.major, r.compatibilityLink())
	}
}

// startupError is the "error" attribute of mongod's fatal log line 20573 for a stored document
// this binary refuses.
func (r fcvRules) startupError(doc *types.Document, v string) string {
	rendered := renderDoc(doc)
	var status string
	if r.major == "4.4" {
		status = fmt.Sprintf("BadValue: Invalid value for version, found %s, expected '%s' or '%s'. Contents of featureCompatibilityVersion document in admin.system.version: %s. See %s.",
			v, r.major, r.lastLTS, rendered, r.compatibilityLink())
	} else {
		status = fmt.Sprintf("Location4926900: Invalid featureCompatibilityVersion document in admin.system.version: %s. See %s. :: caused by :: %s",
			rendered, r.compatibilityLink(), r.parseError(v))
	}
	return fmt.Sprintf("UPGRADE PROBLEM: Found an invalid featureCompatibilityVersion document (ERROR: %s). "+
		"If the current featureCompatibilityVersion is below %s, see the documentation on upgrading at "+
		"https://docs.mongodb.com/master/release-notes/%s/#upgrade-procedures.", status, r.lastLTS, r.docs)
}

// renderDoc prints a small document the way mongod's BSONObj::toString does.
func renderDoc(doc *types.Document) string {
	parts := make([]string, 0, doc.Len())
	for _, k := range doc.Keys() {
		v := must.NotFail(doc.Get(k))
		switch v := v.(type) {
		case string:
			parts = append(parts, fmt.Sprintf("%s: %q", k, v))
		case *types.Document:
			parts = append(parts, fmt.Sprintf("%s: %s", k, renderDoc(v)))
		default:
			parts = append(parts, fmt.Sprintf("%s: %v", k, v))
		}
	}
	if len(parts) == 0 {
		return "{}"
	}
	return "{ " + strings.Join(parts, ", ") + " }"
}

func fcvCtx() context.Context {
	info := conninfo.New()
	info.SetBypassBackendAuth()
	return conninfo.Ctx(context.Background(), info)
}

func (h *Handler) fcvCollection() (backends.Collection, error) {
	db, err := h.b.Database(fcvDB)
	if err != nil {
		return nil, lazyerrors.Error(err)
	}
	return db.Collection(fcvCollection)
}

// readFCVDocument returns the stored FCV document, or nil.
func (h *Handler) readFCVDocument(ctx context.Context) (*types.Document, error) {
	c, err := h.fcvCollection()
	if err != nil {
		return nil, err
	}
	qr, err := c.Query(ctx, &backends.QueryParams{})
	if err != nil {
		return nil, lazyerrors.Error(err)
	}
	defer qr.Iter.Close()
	for {
		_, d, err := qr.Iter.Next()
		if errors.Is(err, iterator.ErrIteratorDone) {
			return nil, nil
		}
		if err != nil {
			return nil, lazyerrors.Error(err)
		}
		if id, _ := d.Get("_id"); id == fcvID {
			return d, nil
		}
	}
}

// writeFCV stores {_id: "featureCompatibilityVersion", version: v} durably.
func (h *Handler) writeFCV(ctx context.Context, v string) error {
	c, err := h.fcvCollection()
	if err != nil {
		return err
	}
	doc := must.NotFail(types.NewDocument("_id", fcvID, "version", v))
	res, err := c.UpdateAll(ctx, &backends.UpdateAllParams{Docs: []*types.Document{doc}})
	if err != nil {
		return lazyerrors.Error(err)
	}
	if res.Updated > 0 {
		return nil
	}
	doc = must.NotFail(types.NewDocument("_id", fcvID, "version", v))
	if _, err = c.InsertAll(ctx, &backends.InsertAllParams{Docs: []*types.Document{doc}}); err != nil {
		return lazyerrors.Error(err)
	}
	return nil
}

// initFCV runs before the server accepts connections: it loads the stored FCV, creates it on data
// without one, or ends the process as mongod does when the binary cannot run on the data.
func (h *Handler) initFCV() error {
	major := version.Get().MongoDBVersion
	if i := strings.LastIndex(major, "."); i > 0 {
		major = major[:i]
	}
	rules, ok := fcvByMajor[major]
	if !ok {
		return fmt.Errorf("no featureCompatibilityVersion rules for MongoDB %s", major)
	}
	ctx := fcvCtx()
	doc, err := h.readFCVDocument(ctx)
	if err != nil {
		return err
	}
	current := rules.major
	if doc == nil {
		if err = h.writeFCV(ctx, current); err != nil {
			return err
		}
		h.L.Info(fmt.Sprintf("Setting featureCompatibilityVersion to %s (no featureCompatibilityVersion document in admin.system.version)", current))
	} else {
		v, _ := doc.Get("version")
		s, isString := v.(string)
		if !isString || !rules.knows(s) {
			fatalWrongVersion(rules.startupError(doc, fmt.Sprint(v)))
		}
		current = s
	}
	fcv.mu.Lock()
	fcv.rules, fcv.version = rules, current
	fcv.mu.Unlock()
	return nil
}

// fatalWrongVersion writes mongod's fatal log line (id 20573) to stdout, where mongod logs in a
// container, and exits with mongod's code.
func fatalWrongVersion(msg string) {
	date := time.Now().UTC().Format("2006-01-02T15:04:05.000-07:00")
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(msg)
	fmt.Fprintf(os.Stdout,
		`{"t":{"$date":"%s"},"s":"F",  "c":"CONTROL",  "id":20573,   "ctx":"initandlisten","msg":"Wrong mongod version","attr":{"error":%s}}`+"\n",
		date, strings.TrimSpace(b.String()))
	os.Exit(fcvExitCode)
}

// fcvValue is getParameter's featureCompatibilityVersion value: {version: "X.Y"}.
func fcvValue() *types.Document {
	fcv.mu.Lock()
	defer fcv.mu.Unlock()
	return must.NotFail(types.NewDocument("version", fcv.version))
}

func fcvError(code int, msg string) error {
	return handlererrors.NewCommandErrorMsg(handlererrors.ErrorCode(code), msg)
}

// MsgSetFeatureCompatibilityVersion implements `setFeatureCompatibilityVersion` as mongod of the
// binary's major does on a standalone server.
func (h *Handler) MsgSetFeatureCompatibilityVersion(connCtx context.Context, msg *wire.OpMsg) (*wire.OpMsg, error) {
	document, err := opMsgDocument(msg)
	if err != nil {
		return nil, lazyerrors.Error(err)
	}
	dbName, err := common.GetRequiredParam[string](document, "$db")
	if err != nil {
		return nil, err
	}
	if dbName != fcvDB {
		return nil, fcvError(13, "setFeatureCompatibilityVersion may only be run against the admin database.")
	}

	fcv.mu.Lock()
	defer fcv.mu.Unlock()
	r := fcv.rules

	raw := must.NotFail(document.Get(document.Command()))
	requested, isString := raw.(string)
	if !isString {
		return nil, fcvError(14, fmt.Sprintf(
			"BSON field 'setFeatureCompatibilityVersion.setFeatureCompatibilityVersion' is the wrong type '%s', expected type 'string'",
			typeName(raw)))
	}

	confirmed := false
	if document.Has("confirm") {
		if r.major < "7.0" {
			// `confirm` is new in 7.0; older binaries reject it as an unknown field.
			if r.major == "4.4" {
				return nil, fcvError(72, fmt.Sprintf("Unrecognized field found confirm in %s. See %s.",
					renderCommand(document), r.compatibilityLink()))
			}
			return nil, fcvError(40415, "BSON field 'setFeatureCompatibilityVersion.confirm' is an unknown field.")
		}
		c := must.NotFail(document.Get("confirm"))
		b, isBool := c.(bool)
		if !isBool {
			return nil, fcvError(14, fmt.Sprintf(
				"BSON field 'setFeatureCompatibilityVersion.confirm' is the wrong type '%s', expected type 'bool'", typeName(c)))
		}
		confirmed = b
	}

	if !r.knows(requested) {
		if r.major == "4.4" {
			return nil, fcvError(2, fmt.Sprintf("Invalid command argument. Expected '%s' or '%s', found %s in: %s. See %s.",
				r.major, r.lastLTS, requested, renderCommand(document), r.compatibilityLink()))
		}
		return nil, fcvError(4926900, r.parseError(requested))
	}

	if r.major >= "7.0" && !confirmed {
		if requested > fcv.version {
			return nil, fcvError(7369100, fmt.Sprintf("Once you have upgraded to %s, you will not be able to downgrade FCV "+
				"and binary version without support assistance. Please re-run this command with 'confirm: true' to "+
				"acknowledge this and continue with the FCV upgrade.", requested))
		}
		return nil, fcvError(7369100, "Once you have downgraded the FCV, if you choose to downgrade the binary version, "+
			"it will require support assistance. Please re-run this command with 'confirm: true' to acknowledge this "+
			"and continue with the FCV downgrade.")
	}

	if requested != fcv.version {
		// A standalone moves between the last LTS (or last continuous) and the latest only.
		allowed := (requested == r.major) || (fcv.version == r.major && requested == r.lastLTS)
		if !allowed {
			return nil, fcvError(5147403, fmt.Sprintf(
				"cannot set featureCompatibilityVersion to '%s' while featureCompatibilityVersion is '%s'",
				requested, fcv.version))
		}
		if err = h.writeFCV(connCtx, requested); err != nil {
			return nil, err
		}
		h.L.Info(fmt.Sprintf("setFeatureCompatibilityVersion: %s -> %s", fcv.version, requested))
		fcv.version = requested
	}

	return documentOpMsg(must.NotFail(types.NewDocument("ok", float64(1))))
}

// renderCommand prints the command's own fields the way mongod prints a command object.
func renderCommand(document *types.Document) string {
	d := must.NotFail(types.NewDocument())
	for _, k := range document.Keys() {
		if k == document.Command() || k == "confirm" || k == "$db" {
			d.Set(k, must.NotFail(document.Get(k)))
		}
	}
	return renderDoc(d)
}

func typeName(v any) string {
	switch v.(type) {
	case int32:
		return "int"
	case int64:
		return "long"
	case float64:
		return "double"
	case bool:
		return "bool"
	case *types.Document:
		return "object"
	case *types.Array:
		return "array"
	case types.NullType:
		return "null"
	default:
		return fmt.Sprintf("%T", v)
	}
}
