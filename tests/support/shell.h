// Test support: runs a shell command line and captures its stdout and exit status (the
// CLI tests drive the built tachyon binary this way).
#pragma once
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

namespace tachyon::test {

struct ShellRun {
  int exit_code = -1;  // -1 when the command could not start or did not exit normally
  std::string out;
};

inline ShellRun run_shell(const std::string& cmd) {
  ShellRun r;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  const int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// s in single quotes for sh, embedded quotes escaped.
inline std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

}  // namespace tachyon::test
