// JSON Schema (a draft 2020-12 subset) -> GBNF, for response_format json_schema / tools.
//
// Contract: the grammar's `root` accepts JSON texts valid under the schema, for the keywords
// listed below; where a keyword cannot be expressed it is *loosened* (the grammar accepts a
// superset) and a warning says so, or, with SchemaOptions::strict, the conversion fails.
// Independently of the schema the grammar accepts only a canonical-ish subset of JSON
// spellings (see "Text shape"): a model is never forced into an invalid instance, but a
// valid instance in an unusual spelling may be rejected.
//
// Input: nlohmann::ordered_json (the server parses request bodies that way) so properties
// come out in the schema's order; an nlohmann::json overload converts (its objects are
// sorted by key, so properties then come out alphabetically).
//
// Keywords:
//   type (string or array), enum, const (values whose type contradicts `type` are dropped;
//     other sibling keywords are not applied to enum/const values)
//   object: properties, required, additionalProperties (false / true / schema). Absent:
//     strict -> false (OpenAI strict mode); not strict -> any extra property, any value.
//     Properties come in the schema's order, required ones present, optional ones skippable;
//     extra properties only after the declared ones, with keys that differ from every
//     declared name (keys containing `"`, `\` or control characters are not excluded). A name
//     in `required` but not in `properties` is a property with the additionalProperties
//     schema. Size: O(#properties) rules (a chain of tails, the classic construction).
//   array: items (schema, or false), prefixItems, minItems, maxItems (exact; maxItems > 10000
//     is loosened to unbounded). A draft-07 tuple `items: [...]` is read as prefixItems.
//   string: minLength, maxLength (code points; an escape counts as one), pattern (ECMAScript,
//     substring semantics, via regex.h), format date, time, date-time, uuid, email (a
//     practical subset: local part [A-Za-z0-9._%+-]{1,64}, dot-separated LDH labels), ipv4,
//     hostname, and uri (loosely: scheme ":" URI characters; warns). Length limits next to a
//     pattern or format are not enforced (warning). Other formats: warning / strict error.
//   integer: minimum, maximum, exclusiveMinimum, exclusiveMaximum: exact, as digit-range
//     grammars (bounds outside int64 count as absent). Unbounded magnitude: at most 16 digits.
//   number: the same bounds are exact when they are integers (checks the sign and the integer
//     part, and the fraction at an integer bound); a fractional bound is rounded outward with a
//     warning. A bounded number has no exponent; an unbounded one allows e/E with 1-3 digits.
//   boolean, null.
//   anyOf; oneOf (as anyOf, with a warning: exclusivity is not enforced); allOf (branches and
//     siblings merged: properties, required, type intersection, numeric and length bounds
//     tightened; conflicting patterns/formats keep the first, with a warning); sibling
//     keywords next to anyOf/oneOf are merged into each branch.
//   $ref to "#", "#/$defs/..", "#/definitions/.." or any JSON pointer into the document, incl.
//     recursion (one rule per referenced schema); $defs/definitions themselves.
//   Ignored silently: title, description, default, examples, $schema, $id, $comment,
//     deprecated, readOnly, writeOnly, contentMediaType, contentEncoding.
//   Anything else (if/then/else, not, dependentSchemas, dependentRequired, patternProperties,
//     propertyNames, unevaluated*, min/maxProperties, uniqueItems, contains, multipleOf,
//     $anchor, $dynamicRef, unknown keywords): warning "'kw' at <pointer> is not enforced",
//     or with strict an error "unsupported keyword 'kw' at <pointer>".
//   {} / true: any JSON value; false (as the root or reachable): error.
//   No `type`: the types whose keywords appear (properties -> object, items -> array,
//     maxLength -> string, minimum -> number ...); with none of those, any value. (The
//     standard allows every type there; a model asked for {"properties": ..} means an object.)
//
// Text shape:
//   whitespace: compact -> none. Otherwise ws ::= [ \t\n\r]{0,20} after `{` `[` `,` `:` and
//     before `}` `]` `,` `:` (never two ws in a row), none before or after the root value:
//     pretty-printed output up to ~5 levels of 2-space indent fits, and a model cannot emit
//     whitespace forever.
//   strings: raw characters except `"`, `\` and controls; escapes \" \\ \/ \b \f \n \r \t and
//     \uXXXX (in pattern/format strings only each character's own escape, see regex.h).
//   numbers: -?(0|[1-9][0-9]{0,15})(.[0-9]{1,16})?([eE][-+]?[0-9]{1,3})?; integers have no
//     fraction or exponent (JSON Schema would also accept 1.0 for an integer) and no "-0".
//
// Errors name the keyword and its JSON pointer, e.g. "unsupported keyword 'if' at
// /properties/a", "invalid schema: 'minItems' must be a non-negative integer at /items",
// "unsatisfiable schema: minimum > maximum at /properties/age".
//
// Cost: one pass over the schema (each $ref target converted once); the grammar is linear in
// the schema size except enum/const (linear in the values) and integer ranges (O(digits^2)).
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace tachyon::constrain {

struct SchemaGrammar {
  std::string gbnf;                   // root rule "root"
  std::vector<std::string> warnings;  // keywords loosened, e.g. "'multipleOf' at /properties/x is not enforced"
};

struct SchemaOptions {
  bool strict = false;   // true: unsupported keywords are errors, not warnings; additionalProperties defaults to false
  bool compact = false;  // true: no whitespace between tokens
};

// Returns false with *error set (and *out unspecified) on an invalid or unsupported schema.
bool json_schema_to_gbnf(const nlohmann::ordered_json& schema, const SchemaOptions& opt, SchemaGrammar* out,
                         std::string* error);
bool json_schema_to_gbnf(const nlohmann::json& schema, const SchemaOptions& opt, SchemaGrammar* out,
                         std::string* error);

// Any JSON object (response_format json_object), with the text shape above (non-compact).
std::string json_object_gbnf();
// Any JSON value.
std::string json_value_gbnf();

}  // namespace tachyon::constrain
