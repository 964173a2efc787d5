// The smallest CGI program: the same two bytes nginx and the hot handler return, so that the
// cgi rows of scripts/bench differ only in how the program is started and relayed.
#include <unistd.h>

int main() {
  static const char kResponse[] = "Content-Type: text/plain\r\n\r\nok";
  return ::write(1, kResponse, sizeof(kResponse) - 1) == sizeof(kResponse) - 1 ? 0 : 1;
}
