// A plugin for the tests that registers nothing: loading it must be an error that says so.
extern "C" int strata_empty_plugin_marker() { return 0; }
