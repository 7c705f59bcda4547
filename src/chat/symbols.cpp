// Compile-time analysis of a parsed template, as Jinja2 does it before rendering:
//
// 1. Unknown filter and test names are syntax errors, except inside if statements and
//    if-expressions ("soft" frames), where Jinja2 defers the error to evaluation.
//
// 2. Scoping (jinja2/idtracking.py). Every frame (the template, a loop body, a macro
//    body, a filter/set/with block) decides per name, in source order, how it starts
//    out: a name first *read* in the frame, or assigned while an enclosing frame knows
//    it, starts with the outer value -- which a plain scope-chain lookup reproduces. A
//    name first *assigned* in the frame, unknown to the enclosing frames, starts out
//    undefined: a loop or macro nested in the frame that reads it before the assignment
//    runs sees Undefined, not a same-named global. Those names go to Stmt::locals /
//    Program::locals and the interpreter binds them to Undefined when entering the
//    frame. Assignments in only some branches of an if keep the outer value.
#include <map>
#include <set>

#include "chat/ast.h"
#include "chat/lexer.h"

namespace tachyon::chat::detail {

namespace {

// --- 1: filter and test names -------------------------------------------------------------

void check_names(const Expr& e, bool soft);

void check_names(const Body& body, bool soft);

void check_names(const Stmt& s, bool soft) {
  auto ex = [](const ExprPtr& e, bool sft) {
    if (e) check_names(*e, sft);
  };
  switch (s.kind) {
    case StmtKind::kIf:
      for (const auto& [cond, body] : s.branches) {
        check_names(*cond, true);
        check_names(body, true);
      }
      check_names(s.else_body, true);
      return;
    case StmtKind::kFor:
      ex(s.expr, soft);
      ex(s.cond, false);
      check_names(s.body, false);
      check_names(s.else_body, false);
      return;
    case StmtKind::kMacro:
    case StmtKind::kCallBlock:
      for (const auto& d : s.defaults) check_names(*d, false);
      ex(s.expr, soft);
      check_names(s.body, false);
      return;
    case StmtKind::kSetBlock:
    case StmtKind::kFilterBlock:
      ex(s.expr, false);
      check_names(s.body, false);
      return;
    case StmtKind::kWith:
      for (const auto& [t, v] : s.assigns) check_names(*v, soft);
      check_names(s.body, false);
      return;
    default:
      ex(s.expr, soft);
      return;
  }
}

void check_names(const Body& body, bool soft) {
  for (const auto& s : body) check_names(*s, soft);
}

void check_names(const Expr& e, bool soft) {
  if (e.kind == ExprKind::kCond) soft = true;
  if (!soft && e.kind == ExprKind::kFilter && !is_known_filter(e.name))
    throw ParseError{e.line, "No filter named " + py_str_repr(e.name) + "."};
  if (!soft && e.kind == ExprKind::kTest && !is_known_test(e.name))
    throw ParseError{e.line, "No test named " + py_str_repr(e.name) + "."};
  for (const ExprPtr* p : {&e.a, &e.b, &e.c, &e.d})
    if (*p) check_names(**p, soft);
  for (const auto& it : e.items) check_names(*it, soft);
  for (const auto& a : e.args) check_names(*a.value, soft);
}

// --- 2: scopes ----------------------------------------------------------------------------

struct Symbols {
  const Symbols* parent = nullptr;
  std::set<std::string> refs;    // names defined in this frame
  std::set<std::string> stores;  // names assigned in this frame
  std::set<std::string> undef;   // refs that start out undefined

  bool find(const std::string& n) const {
    for (const Symbols* s = this; s; s = s->parent)
      if (s->refs.count(n)) return true;
    return false;
  }
  void load(const std::string& n) {
    if (!find(n)) refs.insert(n);  // resolved from the outside at frame entry
  }
  void store(const std::string& n) {
    stores.insert(n);
    if (refs.count(n)) return;
    refs.insert(n);
    if (!(parent && parent->find(n))) undef.insert(n);
  }
};

void visit_expr(Symbols& sym, const Expr* e) {
  if (!e) return;
  if (e->kind == ExprKind::kName) sym.load(e->name);
  for (const ExprPtr* p : {&e->a, &e->b, &e->c, &e->d}) visit_expr(sym, p->get());
  for (const auto& it : e->items) visit_expr(sym, it.get());
  for (const auto& a : e->args) visit_expr(sym, a.value.get());
}

void visit_target(Symbols& sym, const Expr& t) {
  if (t.kind == ExprKind::kName)
    sym.store(t.name);
  else if (t.kind == ExprKind::kTuple)
    for (const auto& it : t.items) visit_target(sym, *it);
  else if (t.kind == ExprKind::kGetattr)
    sym.load(t.a->name);  // namespace attribute
}

void visit_stmts(Symbols& sym, const Body& body);

// jinja2 Symbols.branch_update over the (body, elifs, else) branches of an if.
void branch_update(Symbols& sym, const std::vector<Symbols>& branches) {
  std::map<std::string, size_t> store_counts;
  for (const auto& b : branches)
    for (const auto& n : b.stores)
      if (!sym.stores.count(n)) ++store_counts[n];
  for (const auto& b : branches) {
    for (const auto& n : b.refs) {
      if (sym.refs.count(n)) continue;
      // New name: the last branch defining it decides how it starts (dict.update order).
      const Symbols* last = nullptr;
      for (const auto& bb : branches)
        if (bb.refs.count(n)) last = &bb;
      bool undef = last->undef.count(n) > 0;
      auto it = store_counts.find(n);
      if (it != store_counts.end() && it->second != branches.size()) undef = false;
      sym.refs.insert(n);
      if (undef) sym.undef.insert(n);
    }
  }
  for (const auto& b : branches) sym.stores.insert(b.stores.begin(), b.stores.end());
}

void visit_if(Symbols& sym, const Stmt& s) {
  visit_expr(sym, s.branches[0].first.get());
  std::vector<Symbols> branches(3, sym);  // body, elifs, else
  visit_stmts(branches[0], s.branches[0].second);
  // Jinja2 nests each elif as an if without else inside the "elif" branch.
  for (size_t i = 1; i < s.branches.size(); ++i) {
    Symbols& e = branches[1];
    visit_expr(e, s.branches[i].first.get());
    std::vector<Symbols> inner(3, e);
    visit_stmts(inner[0], s.branches[i].second);
    branch_update(e, inner);
  }
  visit_stmts(branches[2], s.else_body);
  branch_update(sym, branches);
}

void visit_stmt(Symbols& sym, const Stmt& s) {
  switch (s.kind) {
    case StmtKind::kOutput:
      visit_expr(sym, s.expr.get());
      return;
    case StmtKind::kIf:
      visit_if(sym, s);
      return;
    case StmtKind::kFor:
      visit_expr(sym, s.expr.get());
      return;  // only the iterable
    case StmtKind::kSet:
      visit_expr(sym, s.expr.get());
      visit_target(sym, *s.target);
      return;
    case StmtKind::kSetBlock:
      visit_target(sym, *s.target);
      return;
    case StmtKind::kMacro:
      sym.store(s.name);
      return;
    case StmtKind::kCallBlock:
      visit_expr(sym, s.expr.get());
      return;
    case StmtKind::kFilterBlock:
      visit_expr(sym, s.expr.get());
      return;
    case StmtKind::kWith:
      for (const auto& [t, v] : s.assigns) visit_expr(sym, v.get());
      return;
    default:
      return;
  }
}

void visit_stmts(Symbols& sym, const Body& body) {
  for (const auto& s : body) visit_stmt(sym, *s);
}

void analyze_children(const Symbols& frame, Body& body);

// Marks Expr::fold. Returns what the subtree contains.
struct FoldInfo {
  bool slice = false, dynamic = false, short_circuit = false;
};

FoldInfo mark_fold(Expr& e) {
  FoldInfo info;
  auto add = [&](const FoldInfo& c) {
    info.slice |= c.slice;
    info.dynamic |= c.dynamic;
    info.short_circuit |= c.short_circuit;
  };
  for (ExprPtr* p : {&e.a, &e.b, &e.c, &e.d})
    if (*p) add(mark_fold(**p));
  for (auto& it : e.items) add(mark_fold(*it));
  for (auto& a : e.args) add(mark_fold(*a.value));
  if (e.kind == ExprKind::kSlice) info.slice = true;
  if (e.kind == ExprKind::kName || e.kind == ExprKind::kCall) info.dynamic = true;
  if (e.kind == ExprKind::kAnd || e.kind == ExprKind::kOr || e.kind == ExprKind::kCond) info.short_circuit = true;
  e.fold = info.slice && (!info.dynamic || info.short_circuit);
  return info;
}

void mark_fold(Body& body) {
  for (auto& sp : body) {
    Stmt& s = *sp;
    for (ExprPtr* p : {&s.expr, &s.target, &s.cond})
      if (*p) mark_fold(**p);
    for (auto& [c, b] : s.branches) {
      mark_fold(*c);
      mark_fold(b);
    }
    for (auto& d : s.defaults) mark_fold(*d);
    for (auto& [t, v] : s.assigns) mark_fold(*v);
    mark_fold(s.body);
    mark_fold(s.else_body);
  }
}

std::vector<std::string> analyze_frame(const Symbols* parent, const std::vector<std::string>& params,
                                       const std::vector<const Expr*>& exprs, Body& body) {
  Symbols sym;
  sym.parent = parent;
  for (const auto& p : params) sym.refs.insert(p);
  for (const Expr* e : exprs) visit_expr(sym, e);
  visit_stmts(sym, body);
  analyze_children(sym, body);
  return std::vector<std::string>(sym.undef.begin(), sym.undef.end());
}

void target_names(const Expr& t, std::vector<std::string>& out) {
  if (t.kind == ExprKind::kName) out.push_back(t.name);
  for (const auto& it : t.items) target_names(*it, out);
}

// Analyzes the frames opened by statements of `frame` (including inside its ifs).
void analyze_children(const Symbols& frame, Body& body) {
  for (auto& sp : body) {
    Stmt& s = *sp;
    switch (s.kind) {
      case StmtKind::kIf:
        for (auto& [cond, b] : s.branches) analyze_children(frame, b);
        analyze_children(frame, s.else_body);
        break;
      case StmtKind::kFor: {
        std::vector<std::string> params = {"loop"};
        target_names(*s.target, params);
        s.locals = analyze_frame(&frame, params, {}, s.body);
        s.else_locals = analyze_frame(&frame, {}, {}, s.else_body);
        break;
      }
      case StmtKind::kMacro:
      case StmtKind::kCallBlock: {
        std::vector<std::string> params = s.params;
        for (const char* special : {"varargs", "kwargs", "caller"}) params.push_back(special);
        std::vector<const Expr*> exprs;
        for (const auto& d : s.defaults) exprs.push_back(d.get());
        s.locals = analyze_frame(&frame, params, exprs, s.body);
        break;
      }
      case StmtKind::kSetBlock:
      case StmtKind::kFilterBlock:
        s.locals = analyze_frame(&frame, {}, {s.expr.get()}, s.body);
        break;
      case StmtKind::kWith: {
        std::vector<std::string> params;
        for (const auto& [t, v] : s.assigns) target_names(*t, params);
        s.locals = analyze_frame(&frame, params, {}, s.body);
        break;
      }
      default:
        break;
    }
  }
}

}  // namespace

void analyze_program(Program& program) {
  check_names(program.body, false);
  mark_fold(program.body);
  program.locals = analyze_frame(nullptr, {}, {}, program.body);
}

}  // namespace tachyon::chat::detail
