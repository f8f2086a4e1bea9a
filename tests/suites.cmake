# Suites of the later folders. Each line is added by the issue that creates the folder's tests.
conductor_test_suite(eval_tests eval conductor_eval)
conductor_test_suite(serve_tests serve conductor_serve conductor_serve_sim conductor_envs conductor_policies)
conductor_test_suite(world_tests world conductor_world)
conductor_test_suite(envs_tests envs conductor_envs)
conductor_test_suite(policies_tests policies conductor_policies conductor_serve)  # bad export dirs: serve's loader
conductor_test_suite(trainer_tests trainer conductor_trainer)
# The trainer's signal test runs the real `conductor` binary (fork + exec): pass its path, build it first.
if(TARGET trainer_tests AND TARGET conductor)
  target_compile_definitions(trainer_tests PRIVATE CONDUCTOR_BIN="$<TARGET_FILE:conductor>")
  add_dependencies(trainer_tests conductor)
endif()
conductor_test_suite(artifacts_tests artifacts conductor_artifacts)
if(TARGET conductor_tokenizer)
  conductor_test_suite(tokenizer_tests tokenizer conductor_tokenizer)
endif()
if(TARGET conductor_llm)
  conductor_test_suite(llm_tests llm conductor_llm)
endif()
