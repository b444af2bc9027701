// The Boost.Test module; each other file in tests/ is one suite named after it.
#define BOOST_TEST_MODULE strata
#include <boost/test/unit_test.hpp>
