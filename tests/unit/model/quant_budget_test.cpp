// Quantization to a size budget (model/quant_budget.h): the plan fits the budget, spends
// more bytes only where they lower the error proxy (a larger budget never plans a larger
// error), refuses a budget below the cheapest mix, and the file written with the plan
// fits the budget and loads.
#include <gtest/gtest.h>

#include <filesystem>
#include <regex>

#include "model/model.h"
#include "model/quant_budget.h"
#include "model/quantize.h"

using namespace tachyon;

namespace {

const std::string kF16 = std::string(TACHYON_SHARED_DATA) + "/models/mini-llama-F16.gguf";

size_t quantized_size(const std::string& mix) {
  const std::string out = ::testing::TempDir() + "qb-" + mix + ".gguf";
  auto t = model::parse_quant_target(mix);
  EXPECT_TRUE(t.is_ok());
  EXPECT_TRUE(model::quantize_file(kF16, out, t.value(), {}).is_ok());
  const size_t s = std::filesystem::file_size(out);
  std::filesystem::remove(out);
  return s;
}

}  // namespace

TEST(QuantBudget, PlanFitsAndSpendsBytesWhereTheyLowerTheError) {
  const size_t q2 = quantized_size("Q2_K"), q3 = quantized_size("Q3_K_M"), q5 = quantized_size("Q5_K_M");
  double last_error = 1e300;
  for (size_t budget : {q2, q3, q5}) {
    auto plan = model::plan_budget_mix(kF16, budget, nullptr, 2);
    ASSERT_TRUE(plan.is_ok()) << plan.status().message();
    EXPECT_LE(plan->total_bytes, budget);
    EXPECT_LE(plan->error, last_error);
    last_error = plan->error;
    ASSERT_FALSE(plan->tensors.empty());
    for (const auto& c : plan->tensors) {
      EXPECT_TRUE(c.type == DType::Q2_K || c.type == DType::Q3_K || c.type == DType::Q4_K || c.type == DType::Q5_K ||
                  c.type == DType::Q6_K || c.type == DType::Q8_0 || c.type == DType::Q4_0 || c.type == DType::Q5_0)
          << c.name;
      EXPECT_GE(c.error, 0.0);
    }
  }
  // written with the plan: within the budget, and it loads
  auto plan = model::plan_budget_mix(kF16, q3, nullptr, 2);
  ASSERT_TRUE(plan.is_ok());
  model::QuantizeOptions opt;
  for (const auto& c : plan->tensors) {
    model::TensorTypeOverride o;
    o.pattern = "^" + std::regex_replace(c.name, std::regex(R"(\.)"), R"(\.)") + "$";
    o.re = std::regex(o.pattern);
    o.type = c.type;
    opt.overrides.push_back(o);
  }
  const std::string out = ::testing::TempDir() + "qb-plan.gguf";
  ASSERT_TRUE(model::quantize_file(kF16, out, model::parse_quant_target("Q4_K_M").value(), opt).is_ok());
  EXPECT_LE(std::filesystem::file_size(out), q3);
  auto m = model::Model::load(out);
  EXPECT_TRUE(m.is_ok()) << m.status().message();
  std::filesystem::remove(out);
}

TEST(QuantBudget, BudgetBelowTheCheapestMixIsAClearError) {
  auto plan = model::plan_budget_mix(kF16, 100000, nullptr, 1);
  ASSERT_FALSE(plan.is_ok());
  EXPECT_NE(plan.status().message().find("below the smallest mix"), std::string::npos) << plan.status().message();
}
