import t from 'tap'
import { classifyIp, normaliseIp } from '../../src/engine/ip-address.js'

t.test('addresses that say nothing about where a user is', async (t) => {
  for (const ip of ['10.1.2.3', '172.16.0.1', '192.168.1.1', '127.0.0.1', '169.254.1.1', '100.64.0.1', '0.0.0.0', '::1', 'fd00::1', 'fe80::1', '::ffff:10.0.0.1', '::ffff:127.0.0.1']) {
    t.equal(classifyIp(ip), 'private', ip)
  }
  for (const ip of ['81.2.69.142', '103.86.96.100', '2001:4860:4860::8888', '::ffff:81.2.69.142']) t.equal(classifyIp(ip), 'public', ip)
  for (const ip of ['', 'localhost', '999.1.1.1', '1.2.3']) t.equal(classifyIp(ip), 'invalid', ip)
})

t.test('an IPv4-mapped IPv6 address is spelled as the IPv4 address it is; others are left as they are', async (t) => {
  t.equal(normaliseIp('::ffff:10.0.0.1'), '10.0.0.1')
  t.equal(normaliseIp('::FFFF:81.2.69.142'), '81.2.69.142')
  t.equal(normaliseIp('2001:db8::1'), '2001:db8::1')
  t.equal(normaliseIp('81.2.69.142'), '81.2.69.142')
})
