#include <iostream>
int main() { std::cout << "strata\n"; }
