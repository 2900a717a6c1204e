// mac1/mac2 and cookie replies between one initiator (CookieMaker) and one responder
// (CookieChecker), without the engine around them.
#include "control/cookie.hpp"

#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <span>

#include "crypto/x25519.hpp"

namespace meshgate::control {
namespace {

using namespace std::chrono_literals;

struct CookieFixture : ::testing::Test {
    crypto::PrivateKey responder_key = crypto::generate_private_key();
    crypto::PublicKey responder_public = crypto::derive_public_key(responder_key);
    CookieChecker checker{responder_public};
    CookieMaker maker{responder_public};
    ProtocolConfig config;
    Endpoint initiator = Endpoint::v4(198, 51, 100, 7, 51820);
    Timestamp now = 1h;
    std::array<std::uint8_t, sizeof(Initiation)> message{};

    CookieFixture() {
        message[0] = static_cast<std::uint8_t>(MessageType::initiation);
        for (std::size_t i = 4; i < message.size(); ++i) {
            message[i] = static_cast<std::uint8_t>(i * 7);
        }
    }

    MacCheck check(bool under_load, const Endpoint& from) {
        return checker.check(message, from, under_load, now, config);
    }

    // The responder answers with a cookie reply; the initiator takes the cookie.
    void exchange_cookie() {
        CookieReply reply = checker.make_reply(message, 1234, initiator, now, config);
        ASSERT_TRUE(maker.consume_reply(reply, now));
    }

    std::uint8_t* mac2() { return message.data() + message.size() - mac_bytes; }
};

TEST_F(CookieFixture, Mac1IsAlwaysChecked) {
    maker.add_macs(message, now, config);
    EXPECT_EQ(check(false, initiator), MacCheck::ok);
    message[10] ^= 1;
    EXPECT_EQ(check(false, initiator), MacCheck::bad_mac1);
    EXPECT_EQ(check(true, initiator), MacCheck::bad_mac1);
}

TEST_F(CookieFixture, UnderLoadMissingOrWrongMac2AsksForACookie) {
    maker.add_macs(message, now, config);  // no cookie yet: mac2 is zeros
    EXPECT_EQ(check(true, initiator), MacCheck::needs_cookie);
    // A non-zero mac2 that is not the cookie's MAC takes the computing path, same answer.
    mac2()[3] = 0x5a;
    EXPECT_EQ(check(true, initiator), MacCheck::needs_cookie);
}

TEST_F(CookieFixture, CookieRoundTripPassesUnderLoad) {
    maker.add_macs(message, now, config);
    exchange_cookie();
    maker.add_macs(message, now, config);
    EXPECT_EQ(check(true, initiator), MacCheck::ok);
}

TEST_F(CookieFixture, CookieIsBoundToTheSourceAddressAndPort) {
    maker.add_macs(message, now, config);
    exchange_cookie();
    maker.add_macs(message, now, config);
    EXPECT_EQ(check(true, Endpoint::v4(198, 51, 100, 8, 51820)), MacCheck::needs_cookie);
    EXPECT_EQ(check(true, Endpoint::v4(198, 51, 100, 7, 51821)), MacCheck::needs_cookie);
}

TEST_F(CookieFixture, SecretRotationRetiresOldCookies) {
    maker.add_macs(message, now, config);
    exchange_cookie();
    maker.add_macs(message, now, config);
    now += config.cookie_secret_lifetime;  // the responder's secret is replaced
    EXPECT_EQ(check(true, initiator), MacCheck::needs_cookie);
}

TEST_F(CookieFixture, ReplyForAnotherMac1IsRejected) {
    maker.add_macs(message, now, config);
    CookieReply reply = checker.make_reply(message, 1234, initiator, now, config);
    message[10] ^= 1;
    maker.add_macs(message, now, config);  // the maker now expects a reply to a new mac1
    EXPECT_FALSE(maker.consume_reply(reply, now));
    EXPECT_FALSE(maker.has_cookie(now, config));
}

}  // namespace
}  // namespace meshgate::control
