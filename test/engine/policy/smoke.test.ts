import t from 'tap'
t.test('runs', async (t) => { t.equal(1 + 1, 2) })
