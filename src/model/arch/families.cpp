// The table of supported architecture families (model/arch.h).
#include "model/arch.h"

namespace tachyon::model {

// Each defined in its family's file.
extern const Family kLlamaFamily;
extern const Family kQwen2Family;
extern const Family kQwen3Family;
extern const Family kQwen3MoeFamily;
extern const Family kGemma2Family;
extern const Family kGemma3Family;
extern const Family kPhi3Family;

namespace {
const Family* const kFamilies[] = {&kLlamaFamily, &kQwen2Family, &kQwen3Family, &kQwen3MoeFamily, &kGemma2Family, &kGemma3Family, &kPhi3Family};
}  // namespace

const Family* find_family(const std::string& arch) {
  for (const Family* f : kFamilies)
    if (arch == f->name) return f;
  return nullptr;
}

std::string family_names() {
  std::string s;
  for (const Family* f : kFamilies) s += (s.empty() ? "" : ", ") + std::string(f->name);
  return s;
}

}  // namespace tachyon::model
