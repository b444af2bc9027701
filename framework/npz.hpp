// .npy / .npz files: named float tensors that numpy reads with `np.load` and nothing
// else. Written by us (xtensor 0.24 has no .npz, and xtensor-io is not in Debian 12):
// an .npz is a zip archive of .npy members, stored uncompressed, each with its CRC-32.
// The reader accepts uncompressed archives (ours, and numpy's np.savez) and checks
// every CRC, so a truncated or corrupted file is refused with a message.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace strata {

struct NamedArray {
  std::string name;
  std::vector<std::size_t> shape;
  std::vector<float> data;  // row-major float32 (checkpoints store float32 whatever T)
};

std::uint32_t crc32(const void* data, std::size_t size, std::uint32_t crc = 0);

// The bytes of an .npz archive holding `arrays` (members "<name>.npy").
std::string encode_npz(const std::vector<NamedArray>& arrays);
// A zip archive storing (uncompressed) each (member name, bytes) pair; encode_npz's
// container, and the fuzzer's way to wrap arbitrary .npy payloads.
std::string store_zip(const std::vector<std::pair<std::string, std::string>>& members);
// Parses an archive produced by encode_npz or np.savez; `what` names it in errors.
std::vector<NamedArray> decode_npz(const std::string& bytes, const std::string& what);

// Parses one .npy file of numbers (float32/64 or integers, little-endian, C order),
// converted to float; `what` names it in errors.
NamedArray read_npy(const std::string& bytes, const std::string& what);

}  // namespace strata
