# Suites of the later folders. Each line is added by the issue that creates the folder's tests.
conductor_test_suite(eval_tests eval conductor_eval)
conductor_test_suite(serve_tests serve conductor_serve conductor_envs conductor_policies)
conductor_test_suite(rewards_tests rewards conductor_rewards)
conductor_test_suite(envs_tests envs conductor_envs)
conductor_test_suite(policies_tests policies conductor_policies)
conductor_test_suite(trainer_tests trainer conductor_trainer)
# The trainer's signal test runs the real `conductor` binary (fork + exec): pass its path, build it first.
if(TARGET trainer_tests AND TARGET conductor)
  target_compile_definitions(trainer_tests PRIVATE CONDUCTOR_BIN="$<TARGET_FILE:conductor>")
  add_dependencies(trainer_tests conductor)
endif()
